// The Prometheus endpoint (pg_rproxy.metrics_port): HTTP on the first worker's loop with
// Boost.Beast. GET /metrics renders WorkerHost::metrics_snapshot(); requests are small and timed,
// so a slow or hostile client holds a connection for seconds at most and never the loop.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/crypto.hpp"
#include "core/metrics.hpp"
#include "proxy/blocking_helper.hpp"
#include "proxy/worker_host.hpp"

namespace rproxy {

class MetricsServer {
public:
    MetricsServer(boost::asio::io_context& io, BlockingHelper& helper, WorkerHost& host);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // Opens the listeners (port and addresses are fixed from then on) and applies the rest.
    // Throws std::runtime_error when it cannot listen.
    void start(const MetricsConfig& config);
    // After a reload: user, password file and allowed addresses.
    void configure(const MetricsConfig& config);
    void stop();

    // What one request gets, decided without I/O (unit-testable as it is). authorization: the
    // Authorization header's value, or empty.
    struct Answer {
        int status = 200;
        std::string body;
        bool challenge = false;  // WWW-Authenticate: Basic
    };
    Answer answer(const std::string& peer, const std::string& method, const std::string& target,
                  const std::string& authorization);

private:
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acc);
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket sock);
    bool authorized(const std::string& authorization) const;

    boost::asio::io_context& io_;
    BlockingHelper& helper_;
    WorkerHost& host_;
    std::vector<boost::asio::ip::tcp::acceptor> acceptors_;
    std::vector<std::string> allowed_;
    bool auth_required_ = false;
    // SHA-256 of "user:password", compared in constant time; none while the password file is
    // being read or could not be: then nobody gets in.
    std::optional<auth::Digest> credentials_;
    uint64_t config_generation_ = 0;  // a password file read that finishes late is dropped
    int connections_ = 0;
    bool stopped_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for the helper's answers
};

}  // namespace rproxy
