// Entry point of a listener background worker: PostgreSQL-side setup, then the pure event loop
// (proxy::Worker) runs on this, the main thread, with this file's WorkerHost answering its calls.
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <memory>
#include <string>

#include "auth/auth_snapshot_cache.hpp"
#include "proxy/worker.hpp"
#include "pg/auth_generation.hpp"
#include "pg/auth_catalog.hpp"
#include "pg/connection_limits.hpp"
#include "pg/gucs.hpp"
#include "pg/result_cache.hpp"
#include "pg/rewrite_rules.hpp"
#include "pg/routing_catalog.hpp"
#include "pg/server_table.hpp"
#include "pg/session_table.hpp"
#include "pg/statement_stats.hpp"
#include "pg/metrics_snapshot.hpp"
#include "pg/statement_metrics.hpp"
#include "pg/statement_hook.hpp"
#include "pg/statement_parser.hpp"
#include "pg/worker_stats.hpp"
#include "pg/pg_guard.hpp"

namespace rproxy::pg {

namespace {

volatile sig_atomic_t got_sigterm = 0;
volatile sig_atomic_t got_sighup = 0;
volatile sig_atomic_t got_sigusr2 = 0;
int wake_fd = -1;

// Signal handlers only set flags and poke the eventfd the loop waits on: PG15's latch cannot
// wake an epoll that Asio owns.
void wake_loop() {
    int save_errno = errno;
    uint64_t one = 1;
    if (wake_fd >= 0) (void)!write(wake_fd, &one, sizeof one);
    errno = save_errno;
}

void handle_sigterm(SIGNAL_ARGS) {
    got_sigterm = 1;
    wake_loop();
}

void handle_sighup(SIGNAL_ARGS) {
    got_sighup = 1;
    wake_loop();
}

// Another worker queued a CancelRequest for one of our clients.
void handle_sigusr2(SIGNAL_ARGS) {
    got_sigusr2 = 1;
    wake_loop();
}

void handle_sigusr1(SIGNAL_ARGS) {
    // ProcSignal barriers (DROP DATABASE and others) wait for every backend to absorb them.
    procsignal_sigusr1_handler(postgres_signal_arg);
    wake_loop();
}

class PgWorkerHost final : public WorkerHost {
public:
    explicit PgWorkerHost(int slot) : slot_(slot) {}

    ScannedQuery scan(const std::string& sql) override { return scan_statements(sql); }
    ParsedQuery parse(const std::string& sql, std::string* normalized) override {
        return parse_statements(sql, normalized);
    }

    FirewallConfig firewall_config() override { return rproxy::pg::firewall_config(); }

    void count_rejection(RejectReason reason) override { worker_stats_count_rejection(slot_, reason); }

    CacheConfig cache_config() override { return rproxy::pg::cache_config(); }
    ProbeResult cache_probe(const CacheKey& key, std::string& out, uint64_t* fill_id, uint64_t* rows) override {
        return rproxy::pg::cache_probe(key, out, fill_id, rows);
    }
    bool cache_store(const CacheKey& key, uint64_t fill_id, const std::string& wire, const CacheEntryMeta& meta) override {
        return rproxy::pg::cache_store(key, fill_id, wire, meta);
    }
    void cache_abandon(const CacheKey& key, uint64_t fill_id, int bypass_seconds) override {
        rproxy::pg::cache_abandon(key, fill_id, bypass_seconds);
    }
    uint64_t cache_reset() override { return cache_reset_guarded(); }
    void count_uncacheable(Uncacheable reason) override { cache_count_uncacheable(reason); }
    void count_coalesced() override { cache_count_coalesced(); }
    uint64_t generation_sum(const std::vector<uint32_t>& buckets) override { return cache_generation_sum(buckets); }
    void bump_generations(const std::vector<uint32_t>& buckets) override { cache_bump_generations(buckets); }
    uint64_t invalidate_relation(const std::string& relation) override { return cache_invalidate_guarded(relation); }
    uint64_t invalidate_caller_key(const std::string& prefix) override { return cache_invalidate_key_guarded(prefix); }
    void count_l2(L2Counter c, uint64_t n) override { cache_count_l2(c, n); }
    void l2_pending(const std::vector<uint32_t>& buckets, int delta) override { cache_l2_pending(buckets, delta); }
    bool l2_blocked(const std::vector<uint32_t>& buckets) override { return cache_l2_blocked(buckets); }
    uint64_t l2_reset_owed() override { return cache_l2_reset_owed(); }
    void l2_owe_reset() override { cache_l2_owe_reset(); }
    void l2_reset_paid(uint64_t generation) override { cache_l2_reset_paid(generation); }

    UpstreamConfig upstream_config() override { return rproxy::pg::upstream_config(); }
    MessageLogConfig message_log_config() override { return rproxy::pg::message_log_config(); }

    WakeEvents take_wake_events() override {
        WakeEvents ev;
        pg_call([] {
            if (ProcSignalBarrierPending) ProcessProcSignalBarrier();
        });
        if (got_sighup) {
            got_sighup = 0;
            pg_call([] { ProcessConfigFile(PGC_SIGHUP); });
            forget_builtin_functions();
            hook_.forget();
            ev.reload = true;
        }
        if (got_sigterm) ev.terminate = true;
        if (got_sigusr2) {
            got_sigusr2 = 0;
            int32_t pids[64], keys[64];
            int n = worker_take_cancels(slot_, pids, keys, 64);
            for (int i = 0; i < n; ++i) ev.cancels.emplace_back(pids[i], keys[i]);
        }
        return ev;
    }

    void log(LogLevel level, const std::string& message) override {
        const char* msg = message.c_str();
        int elevel = level == LogLevel::Warning ? WARNING : level == LogLevel::Debug ? DEBUG1 : LOG;
        pg_call([&] { ereport(elevel, (errmsg_internal("%s", msg))); });
    }

    void publish(const WorkerCounters& counters) override {
        worker_stats_publish(slot_, counters);
        statement_metrics_publish_bytes(slot_, counters);
    }
    void count_statement_metrics(const StatementRecord& r, const std::string& upstream) override {
        statement_metrics_count(slot_, r, upstream);
    }
    MetricsConfig metrics_config() override { return rproxy::pg::metrics_config(); }
    MetricsSnapshot metrics_snapshot() override { return read_metrics_snapshot(); }

    ObserveConfig observe_config() override { return rproxy::pg::observe_config(); }
    void record_statement(const StatementRecord& r, std::string_view upstream, std::string_view role) override {
        statement_stats_record(r, upstream, role);
    }
    SecurityConfig security_config() override { return rproxy::pg::security_config(); }
    AuthSnapshot auth_snapshot(const std::string& role) override {
        uint64_t generation = auth_generation();
        auto now = auth::AuthSnapshotCache::Clock::now();
        if (const AuthSnapshot* known = auth_snapshots_.find(role, generation, now)) return *known;
        AuthSnapshot snap = read_auth_snapshot(role);  // a transaction: only after a change
        count_conn_event(ConnEvent::AuthCatalogRead);
        auth_snapshots_.store(role, generation, now, snap);
        return snap;
    }
    std::shared_ptr<const RoutingSnapshot> routing_snapshot() override {
        uint64_t generation = auth_generation();
        auto now = std::chrono::steady_clock::now();
        // Aged out too, as the auth snapshots are, for changes no trigger sees.
        if (routing_ && routing_generation_ == generation && now - routing_read_at_ < std::chrono::seconds(60))
            return routing_;
        // A failed read is kept a second, so that a broken catalog costs one read per second.
        if (routing_error_ && now - routing_error_at_ < std::chrono::seconds(1)) return routing_error_;
        auto snap = std::make_shared<RoutingSnapshot>(read_routing_snapshot());
        if (!snap->error.empty()) {
            routing_error_ = snap;
            routing_error_at_ = now;
            return snap;
        }
        routing_error_.reset();
        routing_ = std::move(snap);
        routing_generation_ = generation;
        routing_read_at_ = now;
        return routing_;
    }
    RouterResult call_router(const std::string& function, const RouteFacts& facts) override {
        return rproxy::pg::call_router(function, facts);
    }
    RoutingConfig routing_config() override { return rproxy::pg::routing_config(); }
    int server_slot(const std::string& upstream, const std::string& host, const std::string& port) override {
        return server_table_slot(upstream, host, port);
    }
    ServerState server_state(int slot) override { return server_table_state(slot); }
    bool claim_server_check(int slot, std::chrono::milliseconds interval) override {
        return server_table_claim_check(slot, interval);
    }
    void report_server_check(int slot, const ServerCheck& check) override { server_table_report(slot, check); }
    void publish_server_counts(const std::vector<ServerCounts>& counts) override {
        server_table_publish(slot_, counts);
    }
    void count_event(ConnEvent e) override { count_conn_event(e); }
    bool claim_client(int max_total) override { return rproxy::pg::claim_client(slot_, max_total); }
    void release_client() override { rproxy::pg::release_client(slot_); }
    bool claim_role(uint32_t role_oid, int limit) override { return rproxy::pg::claim_role(slot_, role_oid, limit); }
    void release_role(uint32_t role_oid) override { rproxy::pg::release_role(slot_, role_oid); }
    int session_started(const SessionInfo& info) override { return session_table_add(slot_, info); }
    void session_ended(int handle) override { session_table_remove(slot_, handle); }
    void session_pinned(int handle, const char* reason) override { session_table_set_pinned(slot_, handle, reason); }
    bool rate_allow(const std::string& address, double per_second, int burst) override {
        return rproxy::pg::rate_allow(address.c_str(), per_second, burst);
    }

    bool intercepting() override { return rules_.any() || hook_.set(); }
    bool rewrite(const std::string& upstream, std::string& sql, std::optional<ErrorFields>& failure) override {
        try {
            return rules_.apply(upstream, sql);
        } catch (const std::exception& e) {
            failure = ErrorFields::make("ERROR", "2201B", std::string("pg_rproxy: ") + e.what());
            return false;
        }
    }
    bool hook_set() override { return hook_.set(); }
    HookAnswer call_statement_hook(const std::string& sql, const std::string& context) override {
        return hook_.call(sql, context);
    }

    int slot() override { return slot_; }
    bool forward_cancel(int slot, int32_t pid, int32_t key) override { return worker_post_cancel(slot, pid, key); }

private:
    int slot_;
    auth::AuthSnapshotCache auth_snapshots_;
    std::shared_ptr<const RoutingSnapshot> routing_;
    uint64_t routing_generation_ = 0;
    std::chrono::steady_clock::time_point routing_read_at_;
    std::shared_ptr<const RoutingSnapshot> routing_error_;
    std::chrono::steady_clock::time_point routing_error_at_;
    RewriteRules rules_;
    StatementHook hook_;
};

void detach_stats(int, Datum arg) { worker_stats_detach(DatumGetInt32(arg)); }

enum class RunResult { Terminated, PostmasterDied, Failed };

// Everything with C++ lifetimes lives in here; the caller reports and exits afterwards.
RunResult run_loop(int slot, char* error, size_t error_size) {
    try {
        PgWorkerHost host(slot);
        SessionLimits limits;
        // The helper thread starts inside Worker's constructor, while signals are still blocked,
        // so it never runs a PostgreSQL signal handler.
        ListenConfig listen = listen_config();
        Worker worker(host, listen, limits, wake_fd, postmaster_alive_fds[POSTMASTER_FD_WATCH]);
        BackgroundWorkerUnblockSignals();
        return worker.run() == Worker::Exit::PostmasterDied ? RunResult::PostmasterDied : RunResult::Terminated;
    } catch (const std::exception& e) {
        strlcpy(error, e.what(), error_size);
    } catch (...) {
        strlcpy(error, "unknown C++ exception", error_size);
    }
    return RunResult::Failed;
}

}  // namespace

}  // namespace rproxy::pg

extern "C" PGDLLEXPORT void pg_rproxy_worker_main(Datum main_arg);

void pg_rproxy_worker_main(Datum main_arg) {
    using namespace rproxy::pg;
    int slot = DatumGetInt32(main_arg);

    pqsignal(SIGTERM, handle_sigterm);
    pqsignal(SIGHUP, handle_sighup);
    pqsignal(SIGUSR1, handle_sigusr1);
    pqsignal(SIGUSR2, handle_sigusr2);
    pqsignal(SIGPIPE, SIG_IGN);

    // Every client is a socket of this one process: allow as many as the hard limit permits.
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }

    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) ereport(FATAL, (errmsg("pg_rproxy: could not create eventfd: %m")));

    BackgroundWorkerInitializeConnection(guc_database(), nullptr, 0);
    pgstat_report_appname("pg_rproxy listener");

    worker_stats_attach(slot, MyProcPid);
    statement_stats_attach(slot);
    connection_limits_attach(slot);
    session_table_attach(slot);
    statement_metrics_attach(slot);
    on_shmem_exit(detach_stats, Int32GetDatum(slot));
    ereport(LOG, (errmsg("pg_rproxy worker %d starting", slot)));

    char error[1024] = {0};
    RunResult result = run_loop(slot, error, sizeof error);
    switch (result) {
        case RunResult::Terminated:
            ereport(LOG, (errmsg("pg_rproxy worker %d shut down", slot)));
            proc_exit(0);
        case RunResult::PostmasterDied:
            proc_exit(1);
        case RunResult::Failed:
            // Exit code 1: the postmaster restarts us after bgw_restart_time (port busy, etc.).
            ereport(LOG, (errmsg("pg_rproxy worker %d failed: %s", slot, error)));
            proc_exit(1);
    }
}
