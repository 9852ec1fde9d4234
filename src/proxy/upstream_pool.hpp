// The worker's pool of upstream connections, shared by its clients at statement boundaries.
// Clients queue for a free connection up to pool_timeout; connections are opened on demand up to
// pool_size, broken ones are dropped and replaced, and a reload applies to new connections (idle
// ones made with an older upstream setting are closed).
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

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
#include "proxy/upstream_functions.hpp"

namespace rproxy {

// No connection could be had: the fields say why (08001 unreachable, 57014 pool timeout).
class UpstreamUnavailable : public std::runtime_error {
public:
    explicit UpstreamUnavailable(ErrorFields e)
        : std::runtime_error(e.find('M') ? *e.find('M') : "upstream unavailable"), fields(std::move(e)) {}
    ErrorFields fields;
};

using ConnectionPtr = std::shared_ptr<ServerConnection>;

class UpstreamPool {
public:
    UpstreamPool(boost::asio::any_io_executor ex, BlockingHelper& helper, std::function<void()> on_change);
    ~UpstreamPool();

    void configure(const UpstreamConfig& cfg);
    boost::asio::awaitable<ConnectionPtr> acquire();  // throws UpstreamUnavailable
    ConnectionPtr try_acquire_now();                  // an idle connection, or nullptr: acquire() must wait
    void release(ConnectionPtr conn);
    void close_idle();

    // What the upstream reported (ParameterStatus) on a connection carrying exactly these client
    // settings, so that new clients with the same settings log in without an upstream round trip.
    using ReportedParameters = std::vector<std::pair<std::string, std::string>>;
    const ReportedParameters* reported_parameters(const SessionSettings& settings) const;
    // The same, shared: clients keep it as what they were told at startup.
    std::shared_ptr<const ReportedParameters> shared_reported_parameters(const SessionSettings& settings) const;
    void remember_parameters(const SessionSettings& settings, ReportedParameters params);

    // host/port/database/role of the current upstream setting: part of every cache key.
    const std::string& identity() const { return identity_; }
    const std::string& role() const { return role_; }
    const UpstreamConfig& config() const { return cfg_; }

    // Volatility of this upstream's own functions, as its pg_proc says: never applied to another
    // upstream, where a function of the same name may be volatile.
    UpstreamFunctions& functions() { return functions_; }

    std::size_t busy() const { return busy_; }
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
    std::string identity_;
    std::string role_;
    uint64_t generation_ = 0;
    std::deque<ConnectionPtr> idle_;
    std::deque<std::shared_ptr<Waiter>> waiters_;
    std::size_t busy_ = 0;
    std::size_t connecting_ = 0;
    std::map<std::map<std::string, std::string>, std::shared_ptr<const ReportedParameters>> reported_;
    mutable std::unordered_map<uint64_t, const ReportedParameters*> reported_by_version_;  // SessionSettings::version
    UpstreamFunctions functions_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rproxy
