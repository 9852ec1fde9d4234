// The Prometheus endpoint's settings and what one scrape reads: a plain snapshot the pg layer
// fills from shared memory and core/metrics_text renders, so the format is tested without a server.
#pragma once
#include "core/pure_layer.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/cache_types.hpp"
#include "core/connection_events.hpp"
#include "core/verdict.hpp"

namespace rproxy {

// pg_rproxy.metrics_*: port and addresses are read once (postmaster), the rest on every reload.
struct MetricsConfig {
    int port = 0;  // 0: no endpoint
    std::string listen_addresses = "localhost";
    std::string user;           // basic authentication when not empty
    // Holds the password (its first line): a file, because the postmaster logs a setting's new
    // value when a reload changes it.
    std::string password_file;
    std::vector<std::string> allowed_addresses;  // CIDR blocks; empty: any address
};

// Upper bounds of the statement latency histogram, in milliseconds (rendered in seconds, the
// Prometheus base unit). Fixed: every worker's slots add up bucket by bucket.
inline constexpr std::array<double, 16> kLatencyBucketsMs = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,   25,
                                                             50,  100,  250, 500, 1000, 2500, 5000, 10000};
constexpr int kLatencyBuckets = static_cast<int>(kLatencyBucketsMs.size());
// The bucket a duration falls in; kLatencyBuckets: above the last bound (+Inf only).
int latency_bucket(double ms);

struct LatencyHistogram {
    std::string upstream;
    std::array<uint64_t, kLatencyBuckets + 1> counts{};  // per bucket, not cumulative; last: above all bounds
    double sum_seconds = 0;
};

struct ServerMetrics {
    std::string upstream, host, port;
    bool healthy = true;
    std::string role;  // primary, standby, unknown
    uint32_t busy = 0, idle = 0, clients = 0;
    uint64_t errors = 0;  // failed health checks and connection attempts
};

struct MetricsSnapshot {
    uint32_t workers = 0;  // listener workers running
    uint32_t clients_active = 0;   // connected, their message loop running
    uint32_t clients_parked = 0;   // idle and parked (see ClientSession::park)
    uint32_t clients_pinned = 0;   // authenticated and holding an upstream connection
    std::array<uint64_t, kConnEventCount> connection_events{};
    std::array<uint64_t, kRejectReasonCount> refusals{};  // by RejectReason
    uint64_t statements_allowed = 0, statements_refused = 0;
    uint64_t cache_hit = 0, cache_miss = 0, cache_uncacheable = 0;  // statements by cache result
    // The shared result cache (pg_rproxy_cache_stats).
    uint64_t cache_hits = 0, cache_misses = 0, cache_coalesced = 0, cache_evictions = 0, cache_expirations = 0,
             cache_stores = 0, cache_entries = 0, cache_bytes = 0, cache_bytes_budget = 0, cache_max_entries = 0;
    std::array<uint64_t, kUncacheableCount> uncacheable{};  // by Uncacheable
    std::array<uint64_t, kL2CounterCount> l2{};              // the Redis level, by L2Counter
    std::vector<ServerMetrics> servers;
    std::vector<LatencyHistogram> latency;
    uint64_t client_received_bytes = 0, client_sent_bytes = 0;
    uint64_t upstream_received_bytes = 0, upstream_sent_bytes = 0;
};

}  // namespace rproxy
