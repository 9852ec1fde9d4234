#include "proxy/metrics_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <fstream>
#include <stdexcept>

#include "core/cidr.hpp"
#include "core/metrics_text.hpp"
#include "proxy/listener.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace rproxy {

namespace {
constexpr int kMaxConnections = 64;                    // more scrapers at once are turned away
constexpr int kMaxRequestsPerConnection = 100;
constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr std::size_t kBodyLimit = 1024;              // GET has none; a small one still gets its 405
constexpr std::chrono::seconds kIoTimeout{5};         // per request: read it, then write the answer
constexpr const char* kRealm = "Basic realm=\"pg_rproxy metrics\", charset=\"UTF-8\"";

// Not SO_REUSEPORT, unlike the proxy port: one worker serves it, and no other process may share it.
tcp::acceptor open_metrics_listener(asio::io_context& io, const tcp::endpoint& ep) {
    tcp::acceptor acc(io);
    try {
        acc.open(ep.protocol());
        acc.set_option(tcp::acceptor::reuse_address(true));
        if (ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true));
        acc.bind(ep);
        acc.listen(asio::socket_base::max_listen_connections);
    } catch (const std::system_error& e) {
        throw std::runtime_error("could not listen on " + ep.address().to_string() + " port " +
                                 std::to_string(ep.port()) + " for metrics: " + e.what());
    }
    return acc;
}

std::string peer_address(const tcp::socket& sock) {
    boost::system::error_code ec;
    auto ep = sock.remote_endpoint(ec);
    if (ec) return "";
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    return addr.to_string();
}

std::optional<std::string> read_password_file(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}
}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, BlockingHelper& helper, WorkerHost& host)
    : io_(io), helper_(helper), host_(host) {}

MetricsServer::~MetricsServer() { *alive_ = false; }

void MetricsServer::start(const MetricsConfig& config) {
    for (const auto& ep : listen_endpoints(config.listen_addresses, config.port))
        acceptors_.push_back(open_metrics_listener(io_, ep));
    if (acceptors_.empty()) throw std::runtime_error("pg_rproxy.metrics_listen_addresses names no address");
    configure(config);
    for (auto& acc : acceptors_) asio::co_spawn(io_, accept_loop(acc), asio::detached);
}

void MetricsServer::configure(const MetricsConfig& config) {
    allowed_ = config.allowed_addresses;
    auth_required_ = !config.user.empty();
    credentials_.reset();
    uint64_t generation = ++config_generation_;
    if (!auth_required_) return;
    if (config.password_file.empty()) {
        host_.log(LogLevel::Warning,
                  "pg_rproxy: pg_rproxy.metrics_user is set without pg_rproxy.metrics_password_file: every scrape is refused");
        return;
    }
    // The file is read on the helper thread: no disk I/O on the loop.
    helper_.submit([this, alive = std::weak_ptr<bool>(alive_), generation, user = config.user,
                    path = config.password_file, ex = io_.get_executor()] {
        std::optional<std::string> password = read_password_file(path);
        std::optional<auth::Digest> digest;
        if (password) digest = auth::sha256(user + ":" + *password);
        asio::post(ex, [this, alive, generation, digest, path] {
            if (alive.expired() || generation != config_generation_) return;
            if (!digest)
                host_.log(LogLevel::Warning, "pg_rproxy: could not read pg_rproxy.metrics_password_file \"" + path +
                                                 "\": every scrape is refused");
            credentials_ = digest;
        });
    });
}

void MetricsServer::stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    for (auto& acc : acceptors_) acc.close(ignored);
}

bool MetricsServer::authorized(const std::string& authorization) const {
    if (!auth_required_) return true;
    if (!credentials_) return false;
    constexpr std::string_view kBasic = "Basic ";
    if (authorization.size() <= kBasic.size()) return false;
    for (std::size_t i = 0; i < kBasic.size() - 1; ++i)  // the scheme is case-insensitive
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != std::tolower(static_cast<unsigned char>(kBasic[i])))
            return false;
    std::string_view token(authorization);
    token.remove_prefix(kBasic.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    std::optional<std::string> decoded = auth::base64_decode(token);
    if (!decoded) return false;
    // Digests of equal length: the comparison takes the same time whatever was sent.
    return auth::equal_in_constant_time(auth::view(auth::sha256(*decoded)), auth::view(*credentials_));
}

MetricsServer::Answer MetricsServer::answer(const std::string& peer, const std::string& method,
                                            const std::string& target, const std::string& authorization) {
    Answer a;
    if (!allowed_.empty()) {
        bool ok = false;
        for (const auto& cidr : allowed_) ok = ok || address_matches(cidr, peer);
        if (!ok) {
            a.status = 403;
            a.body = "forbidden\n";
            return a;
        }
    }
    if (!authorized(authorization)) {
        a.status = 401;
        a.body = "unauthorized\n";
        a.challenge = true;
        return a;
    }
    if (method != "GET") {
        a.status = 405;
        a.body = "method not allowed\n";
        return a;
    }
    std::string_view path(target);
    path = path.substr(0, path.find('?'));
    if (path != "/metrics") {
        a.status = 404;
        a.body = "not found: GET /metrics\n";
        return a;
    }
    a.body = render_metrics(host_.metrics_snapshot());
    return a;
}

asio::awaitable<void> MetricsServer::accept_loop(tcp::acceptor& acc) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket sock = co_await acc.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (stopped_ || ec == asio::error::operation_aborted) co_return;
        if (ec) {
            host_.log(LogLevel::Warning, "pg_rproxy: metrics accept failed: " + ec.message());
            asio::steady_timer pause(io_, std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        if (connections_ >= kMaxConnections) continue;  // closed at once: the scraper retries
        ++connections_;
        asio::co_spawn(io_, serve(std::move(sock)), asio::detached);
    }
}

asio::awaitable<void> MetricsServer::serve(tcp::socket sock) {
    std::weak_ptr<bool> alive = alive_;
    std::string peer = peer_address(sock);
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buffer(kHeaderLimit + kBodyLimit);
    try {
        for (int n = 0; n < kMaxRequestsPerConnection && !stopped_; ++n) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(kHeaderLimit);
            parser.body_limit(kBodyLimit);
            stream.expires_after(kIoTimeout);
            boost::system::error_code ec;
            co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
            if (ec || alive.expired()) break;  // closed, timed out, too large or not HTTP: no answer
            const auto& req = parser.get();
            std::string authorization(req[http::field::authorization]);
            Answer a = answer(peer, std::string(req.method_string()), std::string(req.target()), authorization);
            http::response<http::string_body> res{static_cast<http::status>(a.status), req.version()};
            res.set(http::field::server, "pg_rproxy");
            res.set(http::field::content_type, a.status == 200 ? std::string(kMetricsContentType) : "text/plain; charset=utf-8");
            if (a.challenge) res.set(http::field::www_authenticate, kRealm);
            if (a.status == 405) res.set(http::field::allow, "GET");
            res.keep_alive(req.keep_alive());
            res.body() = std::move(a.body);
            res.prepare_payload();
            stream.expires_after(kIoTimeout);
            co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
            if (ec || alive.expired() || !res.keep_alive()) break;
        }
    } catch (const std::exception& e) {
        // An exception must not leave a detached coroutine: it would end the worker's loop.
        if (!alive.expired()) host_.log(LogLevel::Warning, std::string("pg_rproxy: metrics request failed: ") + e.what());
    }
    if (alive.expired()) co_return;
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
    --connections_;
}

}  // namespace rproxy
