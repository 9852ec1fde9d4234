// Statement latencies as a fixed histogram of geometric buckets (each √2 wider than the one
// before), small enough to keep per statement in shared memory, from which p50 and p99 are read.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>

namespace rproxy {

constexpr int kStatementLatencyBuckets = 48;
constexpr double kLatencyFirstBound = 0.005;  // ms: bucket 0 holds [0, 0.005), bucket 47 everything past ~84 s

int statement_latency_bucket(double ms);
double statement_latency_upper(int bucket);
// The q-quantile (0 < q <= 1) of the latencies counted in counts, interpolated geometrically
// inside its bucket and never above max_ms; 0 when nothing was counted.
double statement_latency_percentile(const uint32_t (&counts)[kStatementLatencyBuckets], double q, double max_ms);

}  // namespace rproxy
