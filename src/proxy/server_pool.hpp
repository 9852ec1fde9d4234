// One upstream server's pool of connections in a worker, shared by its clients at statement
// boundaries (an Upstream has one per server of its host list). Clients queue for a free
// connection up to pool_timeout; connections are opened on demand up to pool_size, broken ones are
// dropped and replaced, and a reload applies to new connections (idle ones made with an older
// setting are closed).
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <unordered_map>
#include <vector>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/config.hpp"
#include "core/error_fields.hpp"
#include "proxy/blocking_helper.hpp"
#include "proxy/server_connection.hpp"

namespace rproxy {

// No connection could be had: the fields say why (08001 unreachable, 57014 pool timeout).
class UpstreamUnavailable : public std::runtime_error {
public:
    explicit UpstreamUnavailable(ErrorFields e)
        : std::runtime_error(e.find('M') ? *e.find('M') : "upstream unavailable"), fields(std::move(e)) {}
    ErrorFields fields;
};

using ConnectionPtr = std::shared_ptr<ServerConnection>;

// A new connection as cfg describes it, host names resolved on the helper thread: the connection,
// or null and why not. (The pools' connections and the health checks' are made so.)
boost::asio::awaitable<std::pair<ConnectionPtr, std::string>> open_connection(boost::asio::any_io_executor ex,
                                                                              BlockingHelper& helper, UpstreamConfig cfg,
                                                                              uint64_t generation, bool for_login = false);

class ServerPool {
public:
    ServerPool(boost::asio::any_io_executor ex, BlockingHelper& helper, std::function<void()> on_change);
    ~ServerPool();

    void configure(const UpstreamConfig& cfg);
    boost::asio::awaitable<ConnectionPtr> acquire();  // throws UpstreamUnavailable
    ConnectionPtr try_acquire_now();                  // an idle connection, or nullptr: acquire() must wait
    void release(ConnectionPtr conn);
    void close_idle();

    const UpstreamConfig& config() const { return cfg_; }
    // Unique among every pool the process ever made: a connection names the pool it came from.
    uint64_t id() const { return id_; }

    std::size_t busy() const { return busy_; }
    std::size_t waiting() const { return waiters_.size(); }
    // Another connection may be opened now (pool_size not reached).
    bool can_grow() const { return idle_.size() + busy_ + connecting_ < std::size_t(std::max(cfg_.pool_size, 1)); }
    std::size_t idle() const { return idle_.size(); }

private:
    struct Waiter {
        explicit Waiter(boost::asio::any_io_executor ex)
            : wake(ex, boost::asio::steady_timer::time_point::max()) {}
        boost::asio::steady_timer wake;
        ConnectionPtr conn;
        std::optional<ErrorFields> error;
    };

    std::shared_ptr<Waiter> next_waiter();  // oldest waiter still waiting, removed from the queue
    void start_connects();
    boost::asio::awaitable<void> connect_one(uint64_t generation, UpstreamConfig cfg);
    void hand_over(ConnectionPtr conn);
    void fail_first_waiter(ErrorFields e);
    void make_idle(ConnectionPtr conn);
    void drop(const ConnectionPtr& conn);

    boost::asio::any_io_executor ex_;
    BlockingHelper& helper_;
    std::function<void()> on_change_;
    UpstreamConfig cfg_;
    uint64_t id_;
    uint64_t generation_ = 0;
    std::deque<ConnectionPtr> idle_;
    std::deque<std::shared_ptr<Waiter>> waiters_;
    std::size_t busy_ = 0;
    std::size_t connecting_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rproxy
