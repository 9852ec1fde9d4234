#include "proxy/upstream.hpp"

#include <algorithm>

#include "proxy/cache_key.hpp"
#include "proxy/connect_spec.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {
uint64_t last_upstream_id = 0;  // one loop thread per process
}

Upstream::Upstream(asio::any_io_executor ex, BlockingHelper& helper, std::function<void()> on_change,
                   ServerHealth* health, std::string name)
    : ex_(ex), helper_(helper), on_change_(std::move(on_change)), health_(health), name_(std::move(name)), id_(++last_upstream_id) {}

void Upstream::configure(const UpstreamConfig& cfg, Balance balance) {
    bool target_changed = cfg.conninfo != cfg_.conninfo || servers_.empty();
    balance_ = balance;
    if (target_changed) {
        reported_.clear();
        reported_by_version_.clear();
        functions_.clear();
        relations_.clear();
        identity_ = upstream_identity(cfg.conninfo);
        data_identity_ = upstream_data_identity(cfg.conninfo);
        role_ = upstream_user(cfg.conninfo);
    }
    cfg_ = cfg;
    if (health_ && slot_ < 0 && !cfg.conninfo.empty()) slot_ = health_->server_slot(name_, "", "");
    std::vector<ServerTarget> targets;
    wants_ = Wants::Any;
    if (auto pairs = parse_conninfo(cfg.conninfo, nullptr)) {
        targets = split_servers(*pairs, nullptr);
        if (const std::string* t = conninfo_value(*pairs, "target_session_attrs")) {
            if (*t == "primary" || *t == "read-write") wants_ = Wants::Primary;
            else if (*t == "standby" || *t == "read-only") wants_ = Wants::Standby;
            else if (*t == "prefer-standby") wants_ = Wants::PreferStandby;
        }
    }
    if (targets.size() <= 1) {
        // One server: its conninfo as written (a bad one is reported when a client connects).
        Server one{targets.empty() ? "" : targets[0].host, targets.empty() ? "" : targets[0].port, nullptr};
        if (servers_.size() == 1 && servers_[0].host == one.host && servers_[0].port == one.port) {
            servers_[0].pool->configure(cfg);
            return;
        }
        retire_servers();
        one.pool = std::make_shared<ServerPool>(ex_, helper_, on_change_);
        one.pool->configure(cfg);
        if (health_ && !cfg.conninfo.empty()) one.slot = health_->server_slot(name_, one.host, one.port);
        servers_.push_back(std::move(one));
        return;
    }
    bool same = servers_.size() == targets.size();
    for (std::size_t i = 0; same && i < targets.size(); ++i)
        same = servers_[i].host == targets[i].host && servers_[i].port == targets[i].port;
    if (!same) {
        retire_servers();
        for (auto& t : targets)
            servers_.push_back(Server{t.host, t.port, std::make_shared<ServerPool>(ex_, helper_, on_change_),
                                      health_ ? health_->server_slot(name_, t.host, t.port) : -1});
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
        UpstreamConfig one = cfg;
        one.conninfo = format_conninfo(targets[i].conninfo);
        servers_[i].pool->configure(one);
    }
}

void Upstream::retire_servers() {
    for (auto& s : servers_) {
        s.pool->close_idle();
        if (s.pool->busy() > 0 || s.pool->waiting() > 0) retired_.push_back(s.pool);
    }
    servers_.clear();
}

bool Upstream::usable(const Server& s) const {
    if (!health_) return true;
    ServerState st = health_->state(s.slot);
    if (!st.healthy) return false;
    switch (wants_) {
        case Wants::Primary: return st.role != ServerRole::Standby;
        case Wants::Standby: return st.role != ServerRole::Primary;
        default: return true;
    }
}

int Upstream::pick(int skip) {
    int n = static_cast<int>(servers_.size());
    // Asked per statement: no allocation. A candidate is usable and not skip; with
    // prefer-standby, a known standby if there is one.
    auto candidate = [&](int i, bool standby_only) {
        if (i == skip || !usable(servers_[std::size_t(i)])) return false;
        return !standby_only || health_->state(servers_[std::size_t(i)].slot).role == ServerRole::Standby;
    };
    bool standby_only = false;
    if (wants_ == Wants::PreferStandby && health_)
        for (int i = 0; i < n && !standby_only; ++i) standby_only = candidate(i, true);
    bool any = false;
    for (int i = 0; i < n && !any; ++i) any = candidate(i, standby_only);
    if (!any) {
        if (skip >= 0 || n == 0) return -1;  // a retry goes to a usable server only
        // None is known to work: try them all rather than refuse on what may be an old check.
        skip = -1;
    }
    auto ok = [&](int i) { return !any ? i != skip : candidate(i, standby_only); };
    switch (balance_) {
        case Balance::First:
            for (int i = 0; i < n; ++i)
                if (ok(i)) return i;
            return -1;
        case Balance::LeastConnections: {
            int best = -1;
            for (int i = 0; i < n; ++i)
                if (ok(i) && (best < 0 || servers_[std::size_t(i)].pool->busy() < servers_[std::size_t(best)].pool->busy()))
                    best = i;
            return best;
        }
        case Balance::RoundRobin:
            break;
    }
    for (int k = 0; k < n; ++k) {
        int i = static_cast<int>((next_ + std::size_t(k)) % std::size_t(n));
        if (ok(i)) {
            next_ = std::size_t(i) + 1;
            return i;
        }
    }
    return -1;
}

ConnectionPtr Upstream::try_acquire_now() {
    if (servers_.size() == 1) return servers_[0].pool->try_acquire_now();
    // The server the balance chooses; when it has no idle connection but may open one, acquire()
    // opens it there, so that statements spread even while one server's idle connections would do.
    int chosen = pick(-1);
    if (chosen < 0) return nullptr;
    Server& s = servers_[std::size_t(chosen)];
    if (ConnectionPtr c = s.pool->try_acquire_now()) return c;
    if (s.pool->can_grow()) {
        if (balance_ == Balance::RoundRobin) next_ = std::size_t(chosen);  // acquire() picks it again
        return nullptr;
    }
    // It is full: an idle connection of another usable server rather than a wait.
    for (std::size_t i = 0; i < servers_.size(); ++i) {
        if (int(i) == chosen || !usable(servers_[i])) continue;
        if (ConnectionPtr c = servers_[i].pool->try_acquire_now()) return c;
    }
    return nullptr;
}

asio::awaitable<ConnectionPtr> Upstream::acquire() {
    ConnectionPtr now = try_acquire_now();
    if (now) co_return now;
    int first = pick(-1);
    if (first < 0) throw UpstreamUnavailable(ErrorFields::make("ERROR", "08001", "upstream \"" + name_ + "\" has no servers"));
    // Copies: a reload may replace servers_ while this waits.
    std::shared_ptr<ServerPool> pool = servers_[std::size_t(first)].pool;
    int slot = servers_[std::size_t(first)].slot;
    std::optional<ErrorFields> failure;
    try {
        ConnectionPtr conn = co_await pool->acquire();
        co_return conn;
    } catch (const UpstreamUnavailable& e) {
        const std::string* state = e.fields.find('C');
        if (servers_.size() < 2 || !state || *state != "08001") throw;
        failure = e.fields;
    }
    std::string why = failure->find('M') ? *failure->find('M') : "";
    // A server of the wrong kind for target_session_attrs is not unwell.
    bool wrong_kind = why.find("hot standby mode") != std::string::npos || why.find("session is") != std::string::npos;
    if (health_ && !wrong_kind && !server_refused_login_only(why)) health_->connect_failed(slot, why);
    int second = -1;
    for (std::size_t i = 0; i < servers_.size(); ++i)
        if (servers_[i].pool == pool) second = pick(static_cast<int>(i));
    if (second < 0) throw UpstreamUnavailable(*failure);
    std::shared_ptr<ServerPool> other = servers_[std::size_t(second)].pool;
    ConnectionPtr conn = co_await other->acquire();
    co_return conn;
}

Upstream::Server* Upstream::owner(const ServerConnection& conn) {
    for (auto& s : servers_)
        if (s.pool->id() == conn.pool_id()) return &s;
    return nullptr;
}

asio::awaitable<std::pair<ConnectionPtr, std::string>> Upstream::open_for_login() {
    int i = pick(-1);
    if (i < 0) co_return std::pair<ConnectionPtr, std::string>{nullptr, "no server of this upstream is usable"};
    Server& s = servers_[std::size_t(i)];
    UpstreamConfig cfg = s.pool->config();
    int slot = s.slot;
    auto opened = co_await open_connection(ex_, helper_, cfg, 0, true);
    if (!opened.first && health_ && slot >= 0) health_->connect_failed(slot, opened.second);
    co_return opened;
}

void Upstream::release(ConnectionPtr conn) {
    conn->tap(nullptr, 0);  // the next client's session decides
    if (Server* s = owner(*conn)) {
        s->pool->release(std::move(conn));
        return;
    }
    for (std::size_t i = 0; i < retired_.size(); ++i) {
        std::shared_ptr<ServerPool> pool = retired_[i];
        if (pool->id() != conn->pool_id()) continue;
        // Its server left the upstream: the connection serves a client still waiting there, or
        // is closed.
        if (pool->waiting() == 0) conn->mark_broken();
        pool->release(std::move(conn));
        if (pool->busy() == 0 && pool->waiting() == 0) retired_.erase(retired_.begin() + std::ptrdiff_t(i));
        return;
    }
    conn->mark_broken();  // closed as the last reference goes
}

void Upstream::connection_lost(const ServerConnection& conn) {
    if (Server* s = owner(conn)) s->pool->close_idle();
}

void Upstream::close_idle() {
    for (auto& s : servers_) s.pool->close_idle();
}

std::string Upstream::server_of(const ServerConnection& conn) const {
    for (const auto& s : servers_)
        if (s.pool->id() == conn.pool_id()) return s.host + ":" + s.port;
    return "";
}

std::string Upstream::servers_text() const {
    std::string out;
    for (const auto& s : servers_) out += (out.empty() ? "" : ",") + s.host + ":" + s.port;
    return out;
}

std::size_t Upstream::busy() const {
    std::size_t n = 0;
    for (const auto& s : servers_) n += s.pool->busy();
    return n;
}

std::size_t Upstream::idle() const {
    std::size_t n = 0;
    for (const auto& s : servers_) n += s.pool->idle();
    return n;
}

// Asked before every statement: found by the settings' version first, which a session keeps
// until its settings change, instead of comparing whole maps of settings.
const Upstream::ReportedParameters* Upstream::reported_parameters(const SessionSettings& settings) const {
    auto known = reported_by_version_.find(settings.version());
    if (known != reported_by_version_.end()) return known->second;
    auto it = reported_.find(settings.values());
    if (it == reported_.end()) return nullptr;
    if (reported_by_version_.size() >= 1024) reported_by_version_.clear();
    reported_by_version_.emplace(settings.version(), it->second.get());
    return it->second.get();
}

std::shared_ptr<const Upstream::ReportedParameters> Upstream::shared_reported_parameters(
    const SessionSettings& settings) const {
    auto it = reported_.find(settings.values());
    return it == reported_.end() ? nullptr : it->second;
}

void Upstream::remember_parameters(const SessionSettings& settings, ReportedParameters params) {
    constexpr std::size_t kMaxDistinctSettings = 256;  // distinct client setting sets are few
    if (reported_.size() >= kMaxDistinctSettings && !reported_.count(settings.values())) reported_.clear();
    reported_[settings.values()] = std::make_shared<const ReportedParameters>(std::move(params));
    reported_by_version_.clear();  // it pointed into what was just replaced or cleared
}

}  // namespace rproxy
