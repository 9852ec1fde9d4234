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
        identity_ = upstream_identity(cfg.conninfo);
        role_ = upstream_user(cfg.conninfo);
    }
    cfg_ = cfg;
    std::vector<ServerTarget> targets;
    if (auto pairs = parse_conninfo(cfg.conninfo, nullptr)) targets = split_servers(*pairs, nullptr);
    if (targets.size() <= 1) {
        // One server: its conninfo as written (a bad one is reported when a client connects).
        Server one{targets.empty() ? "" : targets[0].host, targets.empty() ? "" : targets[0].port, nullptr};
        if (servers_.size() == 1 && servers_[0].host == one.host && servers_[0].port == one.port) {
            servers_[0].pool->configure(cfg);
            return;
        }
        for (auto& s : servers_) s.pool->close_idle();
        servers_.clear();
        one.pool = std::make_shared<ServerPool>(ex_, helper_, on_change_);
        one.pool->configure(cfg);
        servers_.push_back(std::move(one));
        return;
    }
    bool same = servers_.size() == targets.size();
    for (std::size_t i = 0; same && i < targets.size(); ++i)
        same = servers_[i].host == targets[i].host && servers_[i].port == targets[i].port;
    if (!same) {
        for (auto& s : servers_) s.pool->close_idle();
        servers_.clear();
        for (auto& t : targets)
            servers_.push_back(Server{t.host, t.port, std::make_shared<ServerPool>(ex_, helper_, on_change_)});
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
        UpstreamConfig one = cfg;
        one.conninfo = format_conninfo(targets[i].conninfo);
        servers_[i].pool->configure(one);
    }
}

int Upstream::pick(int skip) {
    int n = static_cast<int>(servers_.size());
    std::vector<int> candidates;
    for (int i = 0; i < n; ++i)
        if (i != skip && usable(servers_[std::size_t(i)])) candidates.push_back(i);
    if (candidates.empty()) {
        if (skip >= 0) return -1;  // a retry goes to a usable server only
        // None is known to work: try them all rather than refuse on what may be an old check.
        for (int i = 0; i < n; ++i) candidates.push_back(i);
    }
    if (candidates.empty()) return -1;
    switch (balance_) {
        case Balance::First:
            return candidates.front();
        case Balance::LeastConnections: {
            int best = candidates.front();
            for (int i : candidates)
                if (servers_[std::size_t(i)].pool->busy() < servers_[std::size_t(best)].pool->busy()) best = i;
            return best;
        }
        case Balance::RoundRobin:
            break;
    }
    int chosen = candidates.front();
    for (int i : candidates)
        if (std::size_t(i) >= next_ % std::size_t(n)) {
            chosen = i;
            break;
        }
    next_ = std::size_t(chosen) + 1;
    return chosen;
}

ConnectionPtr Upstream::try_acquire_now() {
    if (servers_.size() == 1) return servers_[0].pool->try_acquire_now();
    if (balance_ == Balance::LeastConnections) {
        int i = pick(-1);
        return i < 0 ? nullptr : servers_[std::size_t(i)].pool->try_acquire_now();
    }
    // An idle connection on a usable server, starting where the balance says.
    std::size_t n = servers_.size(), start = balance_ == Balance::First ? 0 : next_ % n;
    for (std::size_t k = 0; k < n; ++k) {
        std::size_t i = (start + k) % n;
        if (!usable(servers_[i])) continue;
        if (ConnectionPtr c = servers_[i].pool->try_acquire_now()) {
            if (balance_ == Balance::RoundRobin) next_ = i + 1;
            return c;
        }
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
    std::string host = servers_[std::size_t(first)].host, port = servers_[std::size_t(first)].port;
    std::optional<ErrorFields> failure;
    try {
        ConnectionPtr conn = co_await pool->acquire();
        co_return conn;
    } catch (const UpstreamUnavailable& e) {
        const std::string* state = e.fields.find('C');
        if (servers_.size() < 2 || !state || *state != "08001") throw;
        failure = e.fields;
    }
    if (health_) health_->connect_failed(host, port, failure->find('M') ? *failure->find('M') : "");
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

void Upstream::release(ConnectionPtr conn) {
    if (Server* s = owner(*conn)) {
        s->pool->release(std::move(conn));
        return;
    }
    conn->mark_broken();  // its server left the upstream: closed as the last reference goes
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
