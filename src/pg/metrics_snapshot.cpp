#include "pg/metrics_snapshot.hpp"

#include "pg/connection_limits.hpp"
#include "pg/result_cache.hpp"
#include "pg/server_table.hpp"
#include "pg/session_table.hpp"
#include "pg/statement_metrics.hpp"
#include "pg/worker_stats.hpp"

namespace rproxy::pg {

// Atomics and short spinlocks only: the first worker's loop calls this for every scrape.
MetricsSnapshot read_metrics_snapshot() {
    MetricsSnapshot s;
    uint32_t clients = 0, parked = 0;
    for (int i = 0; i < worker_stats_slots(); ++i) {
        WorkerStatsRow row;
        if (!worker_stats_read(i, &row)) continue;
        ++s.workers;
        clients += row.counters.clients;
        parked += row.counters.parked_clients;
    }
    s.clients_parked = parked;
    s.clients_active = clients > parked ? clients - parked : 0;
    s.clients_pinned = static_cast<uint32_t>(session_table_count_pinned());

    uint64_t events[kConnEventCount];
    read_conn_events(events);
    for (int i = 0; i < kConnEventCount; ++i) s.connection_events[i] = events[i];
    uint64_t refusals[kRejectReasonCount];
    worker_stats_rejections(refusals);
    for (int i = 0; i < kRejectReasonCount; ++i) s.refusals[i] = refusals[i];

    CacheStats c = cache_stats();
    s.cache_hits = c.hits;
    s.cache_misses = c.misses;
    s.cache_coalesced = c.coalesced;
    s.cache_evictions = c.evictions;
    s.cache_expirations = c.expirations;
    s.cache_stores = c.stores;
    s.cache_entries = c.entries;
    s.cache_bytes = c.bytes_used;
    s.cache_bytes_budget = c.bytes_budget;
    s.cache_max_entries = c.max_entries;
    for (int i = 0; i < kUncacheableCount; ++i) s.uncacheable[i] = c.uncacheable[i];
    for (int i = 0; i < kL2CounterCount; ++i) s.l2[i] = c.l2[i];

    server_table_scan([&](const ServerRow& r) {
        if (r.host.empty()) return;  // an upstream's own row (pg_rproxy_upstream_stats), not a server
        ServerMetrics m;
        m.upstream = r.upstream;
        m.host = r.host;
        m.port = r.port;
        m.healthy = r.check.healthy;
        m.role = server_role_name(r.check.role);
        m.busy = r.busy;
        m.idle = r.idle;
        m.clients = r.clients;
        m.errors = r.errors;
        s.servers.push_back(std::move(m));
    });

    statement_metrics_read(s);
    return s;
}

}  // namespace rproxy::pg
