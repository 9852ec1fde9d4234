// One listener worker's event loop: accepts clients, owns the upstream pool, reacts to the wake
// eventfd (signals) and to postmaster death. Runs on the process's main thread.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <cstdint>
#include <map>
#include <array>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/config.hpp"
#include "core/firewall_policy.hpp"
#include "proxy/audit_log.hpp"
#include "proxy/exchange.hpp"
#include "core/statement_record.hpp"
#include "proxy/blocking_helper.hpp"
#include "proxy/statement_memo.hpp"
#include "proxy/sni_certificates.hpp"
#include "proxy/tls_context.hpp"
#include "proxy/statement_description.hpp"
#include "proxy/block_slab.hpp"
#include "proxy/parked_clients.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/health_checker.hpp"
#include "proxy/l2_cache.hpp"
#include "proxy/message_log.hpp"
#include "proxy/route_resolver.hpp"
#include "proxy/upstream_registry.hpp"
#include "proxy/worker_host.hpp"

namespace rproxy {

class ClientSession;
class MetricsServer;

class Worker {
public:
    enum class Exit { Terminated, PostmasterDied };

    // wake_fd: eventfd written by the signal handlers. postmaster_fd: readable when the postmaster
    // dies (-1 when there is none, as in tests). Creates the helper thread: construct the worker
    // before signals are unblocked.
    Worker(WorkerHost& host, ListenConfig listen, SessionLimits limits, int wake_fd, int postmaster_fd);
    ~Worker();

    Exit run();  // throws std::runtime_error if the listeners cannot be opened

    WorkerHost& host() { return host_; }
    StatementParser& parser() { return host_; }
    // Both cache levels: what reaches the first must reach the second (proxy/l2_cache).
    ResultCacheStore& cache() { return tiers_; }
    L2Cache& second_level() { return l2_; }
    WorkerStatistics& stats() { return host_; }
    AuthCatalog& auth_catalog() { return host_; }
    // Where a client's statements go before routing chose: pg_rproxy.upstream.
    const UpstreamPtr& default_upstream() const { return upstreams_.default_upstream(); }
    UpstreamRegistry& upstreams() { return upstreams_; }
    RouteResolver& routes() { return routes_; }
    const SecurityConfig& security() const { return security_; }
    // nullptr when pg_rproxy.ssl is off or its files could not be loaded.
    // Current with pg_rproxy_server_certificates too.
    TlsContextPtr tls_context();
    BlockingHelper& helper() { return helper_; }
    const SessionLimits& limits() const { return limits_; }
    const FirewallConfig& firewall() const { return firewall_; }
    const CacheConfig& cache_config() const { return cache_config_; }
    StatementMemo& memo() { return memo_; }
    // How many configuration reloads this worker has taken: what was judged or described before
    // one may no longer hold.
    uint64_t reloads() const { return reloads_; }
    // Where plain client sockets are read once readable: one buffer for all sessions, so an idle
    // client holds none (sessions never read concurrently: the loop runs one at a time).
    boost::asio::mutable_buffer read_buffer() { return boost::asio::buffer(read_buffer_); }
    // What Describe returned for a statement (key: upstream, result settings, types, text), so a
    // repeated Parse needs no upstream round trip. Kept briefly: upstream DDL may change it.
    std::shared_ptr<const StatementDescription> description(const std::string& key);
    void remember_description(const std::string& key, std::shared_ptr<const StatementDescription> d);
    int ttl_jitter(int max_seconds);
    // BackendKeyData for a new client: the process id field carries this worker's slot, so a
    // CancelRequest arriving at any worker finds its way here.
    std::pair<int32_t, int32_t> new_backend_key();
    void cancel(int32_t pid, int32_t key);
    void count_statement();
    // The one copy of these settings that clients who started with them share.
    SessionSettings intern_settings(const SessionSettings& s);
    // Advanced by the park sweep; a client's wait that began two epochs ago has lasted at least
    // one sweep interval.
    uint64_t park_epoch() const { return park_epoch_; }
    void session_ended(ClientSession* s);
    void count_parked(int delta) {
        counters_.parked_clients += delta;
        publish();
    }
    ParkedClients& parked_clients() { return parked_clients_; }
    // pg_rproxy.message_log: sessions and connections hold a pointer to it while they log.
    MessageLog& message_log() { return message_log_; }

    // The observers after the pipeline (worker_observe.cpp): pg_rproxy_statements, the audit log
    // and the metrics endpoint's counters. observing(): is anything interested in statements at all
    // (one branch per statement). r's views are valid only during the call.
    bool observing() const { return observing_; }
    void statement_done(const StatementRecord& r, const SessionInfo& who, int32_t session);
    // A connection attempt that ended (counted) / one to write to the audit log.
    void connection_event(ConnEvent e, const SessionInfo& who, int32_t session, std::string_view sqlstate);
    void audit_connection(ConnEvent e, const SessionInfo& who, int32_t session, std::string_view sqlstate);
    // The one copy of what the observers need of a client's identity that clients alike share.
    std::shared_ptr<const SessionInfo> intern_identity(const SessionInfo& s);
    // Observations of simple Queries under way, kept for the next ones: a statement allocates
    // none, and an idle client holds none.
    std::unique_ptr<Observed> take_observed() {
        if (spare_observed_.empty()) return std::make_unique<Observed>();
        auto o = std::move(spare_observed_.back());
        spare_observed_.pop_back();
        return o;
    }
    void give_observed(std::unique_ptr<Observed> o) {
        if (spare_observed_.size() < 64) spare_observed_.push_back(std::move(o));
    }

private:
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acc);
    void arm_wake();
    void arm_postmaster();
    void on_wake();
    void begin_shutdown();
    void arm_park_sweep();
    void publish();
    void load_observers();
    void configure_message_log();
    // The log files' thread never calls PostgreSQL: what failed is reported from the loop, once per
    // failure (the thread counts every one).
    void report_log_errors(LogFile& f, const char* name, uint64_t& drops_reported);

    WorkerHost& host_;
    ListenConfig listen_;
    SessionLimits limits_;
    // Only the scheduler locks: the helper thread posts its results, while every socket, timer
    // and registration is used on the loop's thread alone, so the reactor's per-descriptor and
    // registration mutexes would only cost a lock and an unlock per operation.
    BlockSlab session_slab_;  // before io_: outlives the handlers that io_ destroys, which may hold sessions
    MessageLog message_log_;  // before io_ and the upstreams: outlives the sessions and connections that tap it
    uint64_t message_log_drops_reported_ = 0;
    boost::asio::io_context io_{static_cast<int>(BOOST_ASIO_CONCURRENCY_HINT_ID | BOOST_ASIO_CONCURRENCY_HINT_LOCKING_SCHEDULER)};
    BlockingHelper helper_;  // after io_: destroyed (joined) first
    std::unique_ptr<MetricsServer> metrics_;  // slot 0 with pg_rproxy.metrics_port set; after helper_: destroyed first
    void start_metrics();
    HealthChecker health_{io_.get_executor(), helper_, host_};
    L2Cache l2_{io_, helper_, host_, host_};  // after helper_: destroyed first
    CacheTiers tiers_{host_, l2_};
    UpstreamRegistry upstreams_;
    RouteResolver routes_{host_, upstreams_};
    SecurityConfig security_;
    TlsContextPtr tls_context_;
    SniCertificates sni_certificates_;
    std::shared_ptr<const RoutingSnapshot> sni_snapshot_;  // what sni_certificates_ was updated from
    void load_security();
    std::vector<boost::asio::ip::tcp::acceptor> acceptors_;
    boost::asio::posix::stream_descriptor wake_;
    boost::asio::posix::stream_descriptor postmaster_;
    boost::asio::steady_timer grace_;
    boost::asio::steady_timer park_sweep_;
    ParkedClients parked_clients_{io_};
    uint64_t park_epoch_ = 1;
    // Every client of this worker; each session knows its place (removal swaps the last one in).
    std::vector<std::shared_ptr<ClientSession>> sessions_;
    uint32_t next_backend_pid_ = 0;
    std::mt19937 rng_;
    WorkerCounters counters_;
    FirewallConfig firewall_;
    CacheConfig cache_config_;
    StatementMemo memo_;
    struct Described {
        std::shared_ptr<const StatementDescription> result;
        std::chrono::steady_clock::time_point at;
    };
    std::unordered_map<std::string, Described> descriptions_;
    std::map<SessionSettings::Values, SessionSettings> interned_settings_;
    std::size_t description_bytes_ = 0;  // key text held by descriptions_
    bool shutting_down_ = false;
    Exit exit_ = Exit::Terminated;
    std::array<char, 64 * 1024> read_buffer_;
    uint64_t reloads_ = 0;
    ObserveConfig observe_;
    AuditLog audit_;
    bool observing_ = false;
    uint64_t audit_drops_reported_ = 0;
    bool counting_metrics_ = false;  // pg_rproxy.metrics_port is set: every worker counts for it
    std::map<std::string, std::weak_ptr<const SessionInfo>> identities_;
    std::size_t identities_swept_ = 0;
    std::vector<std::unique_ptr<Observed>> spare_observed_;  // what was left after the last sweep of expired ones
};

}  // namespace rproxy
