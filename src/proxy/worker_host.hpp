// What the event loop needs from PostgreSQL, as interfaces: the pg layer implements them in the
// worker process (raw_parser, GUCs, signals, shared-memory statistics). Every method is called on
// the loop's thread, which is the process's main thread.
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/auth_snapshot.hpp"
#include "core/cache_types.hpp"
#include "core/connection_events.hpp"
#include "core/config.hpp"
#include "core/firewall_policy.hpp"
#include "core/observe_config.hpp"
#include "core/metrics.hpp"
#include "core/message_log_config.hpp"
#include "core/routing.hpp"
#include "core/server_state.hpp"
#include "core/session_info.hpp"
#include "core/statement_facts.hpp"
#include "core/statement_record.hpp"
#include "core/statement_hook.hpp"
#include "core/verdict.hpp"

namespace rproxy {

struct WakeEvents {
    bool terminate = false;  // SIGTERM: drain and exit
    bool reload = false;     // SIGHUP: configuration was re-read, fetch upstream_config() again
    std::vector<std::pair<int32_t, int32_t>> cancels;  // CancelRequests other workers received for us
};

struct WorkerCounters {
    uint32_t clients = 0;
    uint32_t upstream_busy = 0;
    uint32_t upstream_idle = 0;
    uint64_t statements = 0;
    uint32_t parked_clients = 0;  // idle clients whose message loop has returned (ClientSession::park)
    // Since the worker started (proxy/io_counters): the metrics endpoint's bytes in and out.
    uint64_t client_received_bytes = 0, client_sent_bytes = 0;
    uint64_t upstream_received_bytes = 0, upstream_sent_bytes = 0;
};

enum class LogLevel { Debug, Log, Warning };

// What the event loop needs from PostgreSQL, in four small interfaces that the pipeline's stages
// and the sessions take one at a time, and the worker's own needs (settings, signals, log) beside
// them. Every method is called on the loop's thread.

// The scanner alone, or raw_parser and the tree walk, built-in volatilities from the gateway's catalog (pg/statement_parser).
class StatementParser {
public:
    virtual ~StatementParser() = default;
    virtual ScannedQuery scan(const std::string& sql) = 0;
    // normalized: sql's ScannedQuery::normalized, taken over (nullptr: the parser scans for it).
    virtual ParsedQuery parse(const std::string& sql, std::string* normalized) = 0;
};

// The shared-memory result cache (pg/result_cache). None of these block or throw.
class ResultCacheStore {
public:
    virtual ~ResultCacheStore() = default;
    // Hit: *rows is the stored result's row count. Claimed: *fill_id is the fill's.
    virtual ProbeResult cache_probe(const CacheKey& key, std::string& out, uint64_t* fill_id, uint64_t* rows) = 0;
    // false: not stored (the fill was taken back, or a counter it depends on moved).
    virtual bool cache_store(const CacheKey& key, uint64_t fill_id, const std::string& wire,
                             const CacheEntryMeta& meta) = 0;
    virtual void cache_abandon(const CacheKey& key, uint64_t fill_id, int bypass_seconds) = 0;
    virtual uint64_t cache_reset() = 0;
    virtual void count_uncacheable(Uncacheable reason) = 0;
    virtual void count_coalesced() = 0;
    // core/relation_generations' counters, shared by every worker.
    virtual uint64_t generation_sum(const std::vector<uint32_t>& buckets) = 0;
    virtual void bump_generations(const std::vector<uint32_t>& buckets) = 0;
    // What another gateway invalidated (proxy/l2_cache): this gateway's entries go too.
    virtual uint64_t invalidate_relation(const std::string& relation) = 0;
    virtual uint64_t invalidate_caller_key(const std::string& prefix) = 0;
    virtual void count_l2(L2Counter c, uint64_t n) = 0;
    // The second level must not be read where an invalidation has not reached Redis yet: the
    // counters of writes whose invalidation is under way, and a reset owed to Redis (one that
    // failed, or an invalidation that did), which every worker of the gateway helps to pay.
    virtual void l2_pending(const std::vector<uint32_t>& buckets, int delta) = 0;
    virtual bool l2_blocked(const std::vector<uint32_t>& buckets) = 0;
    virtual uint64_t l2_reset_owed() = 0;  // 0: none; else the generation to confirm when paid
    virtual void l2_owe_reset() = 0;
    virtual void l2_reset_paid(uint64_t generation) = 0;
};

// Counters and the views built on them (pg/worker_stats, pg/connection_limits, pg/session_table).
class WorkerStatistics {
public:
    virtual ~WorkerStatistics() = default;
    virtual void count_rejection(RejectReason reason) = 0;
    virtual void count_event(ConnEvent e) = 0;
    virtual void publish(const WorkerCounters& counters) = 0;
    // The pg_rproxy_sessions view: a handle, or -1 when it is not shown.
    virtual int session_started(const SessionInfo& info) = 0;
    virtual void session_ended(int handle) = 0;
    virtual void session_pinned(int handle, const char* reason) = 0;
    // pg_rproxy_statements (pg/statement_stats): never waits on a lock.
    virtual void record_statement(const StatementRecord& r, std::string_view upstream, std::string_view role) = 0;
    // A statement's answer is complete (Worker::statement_done): the metrics endpoint's counters.
    virtual void count_statement_metrics(const StatementRecord& r, const std::string& upstream) = 0;
};

// Who may log in (pg/auth_catalog) and the limits on connections (pg/connection_limits).
class AuthCatalog {
public:
    virtual ~AuthCatalog() = default;
    virtual AuthSnapshot auth_snapshot(const std::string& role) = 0;
    virtual bool claim_client(int max_total) = 0;
    virtual void release_client() = 0;
    virtual bool claim_role(uint32_t role_oid, int limit) = 0;
    virtual void release_role(uint32_t role_oid) = 0;
    virtual bool rate_allow(const std::string& address, double per_second, int burst) = 0;
    // pg_rproxy_upstreams, _routes and _server_certificates as of now (read again only after a change).
    virtual std::shared_ptr<const RoutingSnapshot> routing_snapshot() = 0;
    // Asks pg_rproxy.router's function, in a transaction (the caller keeps answers a while).
    virtual RouterResult call_router(const std::string& function, const RouteFacts& facts) = 0;
};

// The upstream servers' shared health and the pg_rproxy_servers view (pg/server_table).
class ServerDirectory {
public:
    virtual ~ServerDirectory() = default;
    // The slot of a server of an upstream, registered on first use; -1 when none is left.
    virtual int server_slot(const std::string& upstream, const std::string& host, const std::string& port) = 0;
    virtual ServerState server_state(int slot) = 0;
    // true: this worker runs the check that is due now; no other does until the interval passed.
    virtual bool claim_server_check(int slot, std::chrono::milliseconds interval) = 0;
    virtual void report_server_check(int slot, const ServerCheck& check) = 0;
    // This worker's connections and clients per server slot (all of them: the others are zeroed).
    virtual void publish_server_counts(const std::vector<ServerCounts>& counts) = 0;
};

// pg_rproxy_rewrite_rules and pg_rproxy.statement_hook (pg/rewrite_rules, pg/statement_hook): what
// a statement's text becomes before the firewall judges it.
class StatementInterceptor {
public:
    virtual ~StatementInterceptor() = default;
    // Whether anything may change a statement: an enabled rule or a hook. A counter read and a
    // comparison, so that a gateway without either pays nothing more; the rules are loaded (and
    // compiled) again here after the table changed.
    virtual bool intercepting() = 0;
    // The enabled rules for clients of this upstream (its pg_rproxy_upstreams name; "" for
    // pg_rproxy.upstream) applied in position order; true when sql changed. failure: a rule's
    // regular expression failed on this text (the statement is refused, not sent unrewritten).
    virtual bool rewrite(const std::string& upstream, std::string& sql, std::optional<ErrorFields>& failure) = 0;
    virtual bool hook_set() = 0;
    // Asks the hook, in a transaction of its own; context is the jsonb argument's text.
    virtual HookAnswer call_statement_hook(const std::string& sql, const std::string& context) = 0;
};

class WorkerHost : public StatementParser, public ResultCacheStore, public WorkerStatistics, public AuthCatalog,
                   public ServerDirectory, public StatementInterceptor {
public:
    // Settings, read again after every reload.
    virtual FirewallConfig firewall_config() = 0;
    virtual UpstreamConfig upstream_config() = 0;
    virtual CacheConfig cache_config() = 0;
    virtual SecurityConfig security_config() = 0;
    virtual RoutingConfig routing_config() = 0;
    virtual ObserveConfig observe_config() = 0;
    virtual MetricsConfig metrics_config() = 0;
    // What GET /metrics shows, read from shared memory (no lock a statement could wait on).
    virtual MetricsSnapshot metrics_snapshot() = 0;
    virtual MessageLogConfig message_log_config() = 0;
    // Called after the wake eventfd fired: handles PostgreSQL-side interrupts (ProcSignal
    // barriers, config reload) and reports what the loop has to act on.
    virtual WakeEvents take_wake_events() = 0;
    virtual void log(LogLevel level, const std::string& message) = 0;
    // This worker's slot (0..workers-1); it is encoded in the BackendKeyData the clients get.
    virtual int slot() = 0;
    virtual bool forward_cancel(int slot, int32_t pid, int32_t key) = 0;
};

}  // namespace rproxy
