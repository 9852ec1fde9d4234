#include "proxy/server_pool.hpp"

#include <algorithm>

#include "proxy/connect_spec.hpp"

namespace asio = boost::asio;

namespace rproxy {

namespace {
uint64_t last_pool_id = 0;  // one loop thread per process
}

ServerPool::ServerPool(asio::any_io_executor ex, BlockingHelper& helper, std::function<void()> on_change)
    : ex_(ex), helper_(helper), on_change_(std::move(on_change)), id_(++last_pool_id) {}

ServerPool::~ServerPool() { *alive_ = false; }

void ServerPool::configure(const UpstreamConfig& cfg) {
    bool target_changed = cfg.conninfo != cfg_.conninfo || cfg.connect_timeout != cfg_.connect_timeout ||
                          cfg.statement_timeout != cfg_.statement_timeout;
    cfg_ = cfg;
    if (target_changed) {
        ++generation_;
        close_idle();  // busy ones are dropped when they come back
    }
    while (idle_.size() > 0 && idle_.size() + busy_ + connecting_ > std::size_t(std::max(cfg_.pool_size, 1))) {
        drop(idle_.front());
        idle_.pop_front();
    }
    start_connects();
    on_change_();
}

void ServerPool::close_idle() {
    for (auto& c : idle_) drop(c);
    idle_.clear();
    on_change_();
}

void ServerPool::drop(const ConnectionPtr& conn) {
    conn->stop_idle_watch();
    conn->mark_broken();
}

ConnectionPtr ServerPool::try_acquire_now() {
    while (!idle_.empty()) {
        ConnectionPtr c = idle_.front();
        idle_.pop_front();
        c->stop_idle_watch();
        if (c->healthy() && c->generation() == generation_) {
            ++busy_;
            on_change_();
            return c;
        }
        drop(c);
    }
    return nullptr;
}

asio::awaitable<ConnectionPtr> ServerPool::acquire() {
    ConnectionPtr idle = try_acquire_now();
    if (idle) co_return idle;
    auto w = std::make_shared<Waiter>(ex_);
    waiters_.push_back(w);
    start_connects();
    w->wake.expires_after(cfg_.pool_timeout);
    boost::system::error_code ec;
    co_await w->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (w->conn) co_return w->conn;  // busy_ was counted by hand_over
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
    if (w->error) throw UpstreamUnavailable(*w->error);
    throw UpstreamUnavailable(ErrorFields::make(
        "ERROR", "57014",
        "canceling statement: no upstream connection became free within pg_rproxy.pool_timeout (" +
            std::to_string(cfg_.pool_timeout.count()) + " ms)"));
}

void ServerPool::release(ConnectionPtr conn) {
    --busy_;
    if (!conn->healthy() || conn->generation() != generation_ ||
        idle_.size() + busy_ + connecting_ >= std::size_t(std::max(cfg_.pool_size, 1))) {
        if (!waiters_.empty() && conn->healthy() && conn->generation() == generation_) {
            hand_over(std::move(conn));  // over the size after a reload: serve a waiter first
            return;
        }
        drop(conn);
        start_connects();
        on_change_();
        return;
    }
    hand_over(std::move(conn));
}

std::shared_ptr<ServerPool::Waiter> ServerPool::next_waiter() {
    while (!waiters_.empty()) {
        auto w = waiters_.front();
        waiters_.pop_front();
        if (!w->conn && !w->error) return w;
    }
    return nullptr;
}

void ServerPool::hand_over(ConnectionPtr conn) {
    auto w = next_waiter();
    if (!w) {
        make_idle(std::move(conn));
        return;
    }
    w->conn = std::move(conn);
    ++busy_;
    w->wake.cancel();
    on_change_();
}

void ServerPool::make_idle(ConnectionPtr conn) {
    std::weak_ptr<ServerConnection> weak = conn;
    std::weak_ptr<bool> alive = alive_;
    conn->watch_idle([this, weak, alive] {
        if (alive.expired()) return;
        auto c = weak.lock();
        if (!c) return;
        idle_.erase(std::remove(idle_.begin(), idle_.end(), c), idle_.end());
        on_change_();
    });
    idle_.push_back(std::move(conn));
    on_change_();
}

void ServerPool::fail_first_waiter(ErrorFields e) {
    if (auto w = next_waiter()) {
        w->error = std::move(e);
        w->wake.cancel();
    }
}

void ServerPool::start_connects() {
    std::size_t limit = std::size_t(std::max(cfg_.pool_size, 1));
    while (waiters_.size() > connecting_ && idle_.size() + busy_ + connecting_ < limit) {
        ++connecting_;
        asio::co_spawn(ex_, connect_one(generation_, cfg_), asio::detached);
    }
}

asio::awaitable<void> ServerPool::connect_one(uint64_t generation, UpstreamConfig cfg) {
    std::weak_ptr<bool> alive = alive_;
    auto [conn, error] = co_await open_connection(ex_, helper_, cfg, generation);
    if (alive.expired()) co_return;
    --connecting_;
    if (!error.empty()) {
        fail_first_waiter(ErrorFields::make("ERROR", "08001", "could not connect to the upstream server: " + error));
        start_connects();
        on_change_();
        co_return;
    }
    conn->set_pool_id(id_);
    if (generation != generation_) {
        drop(conn);
        start_connects();
        co_return;
    }
    hand_over(std::move(conn));
}

asio::awaitable<std::pair<ConnectionPtr, std::string>> open_connection(asio::any_io_executor ex, BlockingHelper& helper,
                                                                       UpstreamConfig cfg, uint64_t generation, bool for_login) {
    ConnectPlan plan = plan_connection(cfg);
    std::string error = plan.error;
    if (error.empty() && !plan.hosts_to_resolve.empty()) {
        // getaddrinfo blocks: run it on the helper thread and wait for its answer on a timer.
        struct Lookup {
            explicit Lookup(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
            asio::steady_timer done;
            bool finished = false;
            std::string error;
            ConnectPlan plan;
        };
        auto lookup = std::make_shared<Lookup>(ex);
        lookup->plan = plan;
        helper.submit([lookup, ex] {
            std::string e = resolve_hosts(lookup->plan);
            asio::post(ex, [lookup, e] {
                lookup->error = e;
                lookup->finished = true;
                lookup->done.cancel();
            });
        });
        boost::system::error_code ec;
        while (!lookup->finished) co_await lookup->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        error = lookup->error;
        plan.spec = lookup->plan.spec;
    }
    auto conn = std::make_shared<ServerConnection>(ex, generation);
    if (error.empty()) error = co_await conn->connect(plan.spec, for_login);
    if (!error.empty()) conn.reset();
    co_return std::make_pair(conn, error);
}

}  // namespace rproxy
