#include "proxy/worker.hpp"

#include <unistd.h>

#include "proxy/client_session.hpp"
#include "proxy/io_counters.hpp"
#include "proxy/listener.hpp"
#include "proxy/metrics_server.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace rproxy {

Worker::Worker(WorkerHost& host, ListenConfig listen, SessionLimits limits, int wake_fd, int postmaster_fd)
    : host_(host),
      listen_(std::move(listen)),
      limits_(limits),
      upstreams_(io_.get_executor(), helper_, [this] { publish(); }, &health_),
      wake_(io_),
      postmaster_(io_),
      grace_(io_),
      park_sweep_(io_),
      rng_(std::random_device{}()) {
    wake_.assign(wake_fd);
    if (postmaster_fd >= 0) postmaster_.assign(postmaster_fd);
    audit_.start();  // its thread, before signals are unblocked
    message_log_.start();  // a thread: before the caller unblocks signals
}

Worker::~Worker() {
    // Both descriptors belong to the caller.
    if (wake_.is_open()) wake_.release();
    if (postmaster_.is_open()) postmaster_.release();
}

std::pair<int32_t, int32_t> Worker::new_backend_key() {
    next_backend_pid_ = (next_backend_pid_ + 1) & 0xffffff;
    int32_t pid = static_cast<int32_t>((uint32_t(host_.slot() + 1) << 24) | next_backend_pid_);
    int32_t key = std::uniform_int_distribution<int32_t>(INT32_MIN, INT32_MAX)(rng_);
    return {pid, key};
}

void Worker::cancel(int32_t pid, int32_t key) {
    int slot = static_cast<int>(uint32_t(pid) >> 24) - 1;
    if (slot != host_.slot()) {
        if (slot >= 0) host_.forward_cancel(slot, pid, key);
        return;
    }
    // A scan, as PgBouncer's: cancel requests are rare, and an index would cost every idle
    // client a node. A wrong key does nothing.
    for (const auto& s : sessions_) s->cancel_statement(pid, key);
}

std::shared_ptr<const StatementDescription> Worker::description(const std::string& key) {
    auto it = descriptions_.find(key);
    if (it == descriptions_.end()) return nullptr;
    if (std::chrono::steady_clock::now() - it->second.at > std::chrono::seconds(60)) {
        description_bytes_ -= it->first.size();
        descriptions_.erase(it);
        return nullptr;
    }
    return it->second.result;
}

void Worker::remember_description(const std::string& key, std::shared_ptr<const StatementDescription> d) {
    // The key holds the statement's text: bounded in bytes as well as in entries.
    constexpr std::size_t kMaxEntries = 4096, kMaxBytes = 8 * 1024 * 1024;
    if (key.size() > kMaxBytes / 16) return;
    if (descriptions_.size() >= kMaxEntries || description_bytes_ + key.size() > kMaxBytes) {
        descriptions_.clear();
        description_bytes_ = 0;
    }
    auto [it, added] = descriptions_.insert_or_assign(key, Described{std::move(d), std::chrono::steady_clock::now()});
    if (added) description_bytes_ += it->first.size();
}

int Worker::ttl_jitter(int max_seconds) {
    if (max_seconds <= 0) return 0;
    return std::uniform_int_distribution<int>(0, max_seconds)(rng_);
}

void Worker::count_statement() {
    ++counters_.statements;
    publish();
}

void Worker::start_metrics() {
    if (host_.slot() != 0) return;
    MetricsConfig cfg = host_.metrics_config();
    if (cfg.port <= 0) return;
    auto server = std::make_unique<MetricsServer>(io_, helper_, host_);
    try {
        server->start(cfg);
    } catch (const std::exception& e) {
        // The proxy serves on without it; a restart after the port is free brings it back.
        host_.log(LogLevel::Warning, std::string("pg_rproxy: no metrics endpoint: ") + e.what());
        return;
    }
    metrics_ = std::move(server);
    host_.log(LogLevel::Log, "pg_rproxy metrics on " + cfg.listen_addresses + " port " + std::to_string(cfg.port) +
                                 (cfg.user.empty() ? "" : " (basic authentication)"));
}

void Worker::load_security() {
    security_ = host_.security_config();
    limits_.max_message_size = security_.max_message_size;
    if (!security_.ssl) {
        tls_context_.reset();
        return;
    }
    std::string error;
    TlsContextPtr ctx = make_tls_context(security_, error);
    // A broken reload keeps the TLS setup that worked, as PostgreSQL does.
    if (ctx) {
        tls_context_ = std::move(ctx);
        sni_certificates_.attach(tls_context_);
        sni_certificates_.invalidate();  // per-name files are read again, as the default one was
        sni_snapshot_.reset();
    } else {
        host_.log(LogLevel::Warning, "pg_rproxy: TLS not (re)configured: " + error);
    }
}

TlsContextPtr Worker::tls_context() {
    if (!tls_context_) return nullptr;
    std::shared_ptr<const RoutingSnapshot> snap = host_.routing_snapshot();
    if (snap != sni_snapshot_ && snap->error.empty()) {  // unreadable tables: keep what was loaded
        sni_snapshot_ = snap;
        for (const auto& problem : sni_certificates_.update(snap->certificates, security_))
            host_.log(LogLevel::Warning, "pg_rproxy: " + problem + "; that name gets the default certificate");
    }
    return tls_context_;
}

void Worker::publish() {
    counters_.clients = static_cast<uint32_t>(sessions_.size());
    counters_.upstream_busy = static_cast<uint32_t>(upstreams_.busy());
    counters_.upstream_idle = static_cast<uint32_t>(upstreams_.idle());
    counters_.client_received_bytes = io_counters.client_received;
    counters_.client_sent_bytes = io_counters.client_sent;
    counters_.upstream_received_bytes = io_counters.upstream_received;
    counters_.upstream_sent_bytes = io_counters.upstream_sent;
    host_.publish(counters_);
}

Worker::Exit Worker::run() {
    std::string ports;
    for (int port : listen_.ports) {
        for (const auto& ep : listen_endpoints(listen_.listen_addresses, port)) acceptors_.push_back(open_listener(io_, ep));
        ports += (ports.empty() ? "" : ",") + std::to_string(port);
    }
    if (acceptors_.empty()) throw std::runtime_error("pg_rproxy.listen_addresses names no address to listen on");
    host_.log(LogLevel::Log, "pg_rproxy listening on " + listen_.listen_addresses + " port " + ports);
    routes_.configure(host_.routing_config());
    health_.configure(routes_.config());
    upstreams_.configure(host_.upstream_config());
    health_.start(upstreams_);
    load_security();
    firewall_ = host_.firewall_config();
    cache_config_ = host_.cache_config();
    l2_.configure(cache_config_, host_.slot() == 0);
    load_observers();
    configure_message_log();
    for (auto& acc : acceptors_) asio::co_spawn(io_, accept_loop(acc), asio::detached);
    start_metrics();
    arm_wake();
    arm_postmaster();
    arm_park_sweep();
    publish();
    io_.run();
    sessions_.clear();
    return exit_;
}

asio::awaitable<void> Worker::accept_loop(tcp::acceptor& acc) {
    for (;;) {
        boost::system::error_code ec;
        ClientSocket sock = co_await acc.async_accept(io_, asio::redirect_error(asio::use_awaitable, ec));
        if (shutting_down_ || ec == asio::error::operation_aborted) co_return;
        if (ec) {
            // Out of descriptors and the like: log, back off briefly, keep serving the others.
            host_.log(LogLevel::Warning, "pg_rproxy: accept failed: " + ec.message());
            asio::steady_timer pause(io_, std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        sock.set_option(tcp::no_delay(true), ec);
        auto session = std::allocate_shared<ClientSession>(SlabAllocator<ClientSession>(&session_slab_), *this, std::move(sock));
        session->worker_index_ = sessions_.size();
        sessions_.push_back(session);
        publish();
        session->start();
    }
}

SessionSettings Worker::intern_settings(const SessionSettings& s) {
    auto it = interned_settings_.find(s.values());
    if (it != interned_settings_.end()) return it->second;
    constexpr std::size_t kMaxDistinct = 256;  // sessions keep theirs when this is cleared
    if (interned_settings_.size() >= kMaxDistinct) interned_settings_.clear();
    interned_settings_.emplace(s.values(), s);
    return s;
}

void Worker::session_ended(ClientSession* s) {
    std::size_t i = s->worker_index_;
    if (i < sessions_.size() && sessions_[i].get() == s) {
        if (i + 1 != sessions_.size()) {
            sessions_[i] = std::move(sessions_.back());
            sessions_[i]->worker_index_ = i;
        }
        sessions_.pop_back();
    }
    publish();
    if (shutting_down_ && sessions_.empty()) io_.stop();
}

void Worker::arm_wake() {
    wake_.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
        if (ec) return;
        uint64_t v;
        while (::read(wake_.native_handle(), &v, sizeof v) > 0) {
        }
        on_wake();
        arm_wake();
    });
}

// Clients that have waited a whole interval for their next message park; the sweep costs one
// look at each session per interval, where parking on every wait would cost a coroutine per statement.
void Worker::arm_park_sweep() {
    park_sweep_.expires_after(std::chrono::milliseconds(500));
    park_sweep_.async_wait([this](boost::system::error_code ec) {
        if (ec || shutting_down_) return;
        ++park_epoch_;
        for (const auto& s : sessions_) s->park_if_waiting_since_before(park_epoch_ - 1);
        report_log_errors(message_log_.file(), "message log", message_log_drops_reported_);
        arm_park_sweep();
    });
}

void Worker::arm_postmaster() {
    if (!postmaster_.is_open()) return;
    postmaster_.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
        if (ec) return;
        host_.log(LogLevel::Log, "pg_rproxy: postmaster died, worker exiting");
        exit_ = Exit::PostmasterDied;
        io_.stop();
    });
}

void Worker::on_wake() {
    WakeEvents ev = host_.take_wake_events();
    if (ev.reload) {
        ++reloads_;
        upstreams_.configure(host_.upstream_config());
        routes_.configure(host_.routing_config());
        health_.configure(routes_.config());
        load_security();
        firewall_ = host_.firewall_config();
        cache_config_ = host_.cache_config();
        l2_.configure(cache_config_, host_.slot() == 0);
        load_observers();
        if (metrics_) metrics_->configure(host_.metrics_config());
        upstreams_.forget_learned();
        memo_.clear();  // built-in volatilities may have been re-read
        descriptions_.clear();
        description_bytes_ = 0;
        configure_message_log();
        for (const auto& s : sessions_) s->retap();
    }
    for (const auto& [pid, key] : ev.cancels) cancel(pid, key);
    if (ev.terminate && !shutting_down_) begin_shutdown();
}

void Worker::configure_message_log() {
    MessageLogConfig c = host_.message_log_config();
    std::string before = message_log_.file().path();
    message_log_.configure(c);
    if (c.path != before)
        host_.log(LogLevel::Log, c.path.empty() ? "pg_rproxy: message log off" : "pg_rproxy: message log to \"" + c.path + "\"");
}

// The log files' thread never calls PostgreSQL: what failed is reported from here, once per
// failure (the thread counts every one).
void Worker::report_log_errors(LogFile& f, const char* name, uint64_t& drops_reported) {
    if (f.error_pending())
        host_.log(LogLevel::Warning, "pg_rproxy: " + f.take_error() + " (lines are lost until it works again)");
    if (f.dropped() != drops_reported) {
        host_.log(LogLevel::Warning, std::string("pg_rproxy: ") + name + ": " + std::to_string(f.dropped() - drops_reported) +
                                         " lines dropped, the disk not keeping up");
        drops_reported = f.dropped();
    }
}

void Worker::begin_shutdown() {
    shutting_down_ = true;
    boost::system::error_code ignored;
    for (auto& acc : acceptors_) acc.close(ignored);
    if (metrics_) metrics_->stop();
    health_.stop();
    upstreams_.close_idle();
    if (sessions_.empty()) {
        io_.stop();
        return;
    }
    for (auto& s : sessions_) s->request_shutdown();
    grace_.expires_after(limits_.shutdown_grace);
    grace_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        host_.log(LogLevel::Log, "pg_rproxy: shutdown grace period over, closing remaining clients");
        for (auto& s : sessions_) s->force_close();
        // Give the sessions one turn of the loop to unwind, then stop regardless.
        grace_.expires_after(std::chrono::milliseconds(200));
        grace_.async_wait([this](boost::system::error_code) { io_.stop(); });
    });
}

}  // namespace rproxy
