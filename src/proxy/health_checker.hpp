// The health of upstream servers, shared by the workers through the ServerDirectory. Every tick
// this worker checks the servers whose check is due and that it claims (one worker per server and
// interval): it connects as the server's pool would and asks pg_is_in_recovery() and the replay
// lag. A failed check, or a failed connection attempt of a pool, takes the server out of its
// upstream's balance until a check passes. The tick also publishes this worker's connection
// counts per server for pg_rproxy_servers.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <map>
#include <memory>
#include <set>

#include "core/config.hpp"
#include "proxy/blocking_helper.hpp"
#include "proxy/upstream.hpp"
#include "proxy/worker_host.hpp"

namespace rproxy {

class UpstreamRegistry;

class HealthChecker : public ServerHealth {
public:
    HealthChecker(boost::asio::any_io_executor ex, BlockingHelper& helper, ServerDirectory& directory);
    ~HealthChecker() override;

    void start(const UpstreamRegistry& upstreams);
    void configure(const RoutingConfig& cfg) { interval_ = cfg.health_check_interval; }
    void stop();

    int server_slot(const std::string& upstream, const std::string& host, const std::string& port) override;
    ServerState state(int slot) override;
    void connect_failed(int slot, const std::string& why) override;

    // What a check found, from the answer to kCheckSql: exposed for unit tests.
    static ServerCheck interpret(const std::optional<std::string>& in_recovery, const std::optional<std::string>& lag_ms);
    static const char* const kCheckSql;

private:
    void arm();
    void tick();
    boost::asio::awaitable<void> check(int slot, UpstreamConfig cfg);

    boost::asio::any_io_executor ex_;
    BlockingHelper& helper_;
    ServerDirectory& directory_;
    const UpstreamRegistry* upstreams_ = nullptr;
    boost::asio::steady_timer timer_;
    std::chrono::milliseconds interval_{5000};
    std::set<int> running_;  // slots being checked by this worker
    struct Totals {
        uint64_t statements = 0, cache_hits = 0;
    };
    std::map<int, Totals> totals_;  // per upstream slot, since the worker started
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rproxy
