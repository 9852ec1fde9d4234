#include "proxy/health_checker.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "proxy/connect_spec.hpp"
#include "proxy/upstream_registry.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

// Replay lag: zero when a standby has replayed all it received, else how old the last replayed
// transaction is (an idle primary makes no lag).
const char* const HealthChecker::kCheckSql =
    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 "
    "ELSE (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint END";

HealthChecker::HealthChecker(asio::any_io_executor ex, BlockingHelper& helper, ServerDirectory& directory)
    : ex_(ex), helper_(helper), directory_(directory), timer_(ex) {}

HealthChecker::~HealthChecker() { *alive_ = false; }

int HealthChecker::server_slot(const std::string& upstream, const std::string& host, const std::string& port) {
    return directory_.server_slot(upstream, host, port);
}

ServerState HealthChecker::state(int slot) { return slot < 0 ? ServerState{} : directory_.server_state(slot); }

namespace {
// libpq's messages span lines ("...failed: Connection refused\n\tIs the server running..."): one line for the view.
std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    std::string out;
    for (char c : s)
        if (!(c == ' ' && !out.empty() && out.back() == ' ')) out.push_back(c);
    return out;
}
}  // namespace

void HealthChecker::connect_failed(int slot, const std::string& why) {
    if (slot < 0) return;
    ServerCheck c;
    c.healthy = false;
    c.error = one_line(why);
    directory_.report_server_check(slot, c);
}

ServerCheck HealthChecker::interpret(const std::optional<std::string>& in_recovery, const std::optional<std::string>& lag_ms) {
    ServerCheck c;
    if (!in_recovery) {
        c.error = "pg_is_in_recovery() returned nothing";
        return c;
    }
    c.healthy = true;
    c.role = *in_recovery == "t" ? ServerRole::Standby : ServerRole::Primary;
    if (lag_ms) c.replay_lag_ms = std::atoll(lag_ms->c_str());
    return c;
}

void HealthChecker::start(const UpstreamRegistry& upstreams) {
    upstreams_ = &upstreams;
    arm();
}

void HealthChecker::stop() {
    upstreams_ = nullptr;
    timer_.cancel();
}

void HealthChecker::arm() {
    // Ticks at least every second (the view's counts), more often when checks are.
    timer_.expires_after(std::min<std::chrono::milliseconds>(interval_, std::chrono::seconds(1)));
    timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
        if (ec || alive.expired() || !upstreams_) return;
        tick();
        arm();
    });
}

void HealthChecker::tick() {
    std::vector<ServerCounts> counts;
    std::map<int, UpstreamConfig> due;
    std::map<int, uint32_t> clients;
    upstreams_->for_each([&](Upstream& u) {
        if (u.slot() >= 0) {
            auto [statements, hits] = u.take_counts();
            totals_[u.slot()].statements += statements;
            totals_[u.slot()].cache_hits += hits;
            clients[u.slot()] += uint32_t(u.clients());
        }
        u.for_each_server([&](int slot, const ServerPool& pool) {
            if (slot < 0) return;
            counts.push_back(ServerCounts{slot, uint32_t(pool.busy()), uint32_t(pool.idle()), uint32_t(u.clients())});
            if (!due.count(slot) && !running_.count(slot)) due.emplace(slot, pool.config());
        });
    });
    for (const auto& [slot, t] : totals_) {
        ServerCounts c;
        c.slot = slot;
        c.clients = clients[slot];
        c.statements = t.statements;
        c.cache_hits = t.cache_hits;
        counts.push_back(c);
    }
    directory_.publish_server_counts(counts);
    for (auto& [slot, cfg] : due) {
        if (!directory_.claim_server_check(slot, interval_)) continue;
        running_.insert(slot);
        asio::co_spawn(ex_, check(slot, cfg), asio::detached);
    }
}

asio::awaitable<void> HealthChecker::check(int slot, UpstreamConfig cfg) {
    std::weak_ptr<bool> alive = alive_;
    // A check never waits longer than its interval: a hung server is an unhealthy one.
    cfg.connect_timeout = std::min(cfg.connect_timeout, std::max(interval_, std::chrono::milliseconds(2000)));
    // Whatever role the upstream wants, the check asks every server what it is.
    if (auto pairs = parse_conninfo(cfg.conninfo, nullptr)) {
        std::erase_if(*pairs, [](const auto& kv) { return kv.first == "target_session_attrs"; });
        cfg.conninfo = format_conninfo(*pairs);
    }
    auto [conn, error] = co_await open_connection(ex_, helper_, cfg, 0);
    if (alive.expired()) co_return;
    ServerCheck result;
    if (conn) {
        auto answer = co_await conn->run_internal(kCheckSql);
        if (alive.expired()) co_return;
        if (answer.error) {
            const std::string* m = answer.error->find('M');
            result.error = m ? *m : "the check query failed";
        } else if (answer.rows.empty() || answer.rows[0].size() < 2) {
            result.error = "the check query returned no row";
        } else {
            result = interpret(answer.rows[0][0], answer.rows[0][1]);
        }
        conn->mark_broken();
    } else if (server_refused_login_only(error)) {
        // The server is up and answering; the login the check borrowed from a client's pool was
        // refused. Healthy, role unknown, and why in the view.
        result.healthy = true;
        result.error = error;
    } else {
        result.error = error;
    }
    running_.erase(slot);
    result.error = one_line(result.error);
    directory_.report_server_check(slot, result);
}

}  // namespace rproxy
