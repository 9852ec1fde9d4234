#include "core/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace rproxy {

int statement_latency_bucket(double ms) {
    if (!(ms >= kLatencyFirstBound)) return 0;  // NaN and negatives too
    // bucket b covers [first * 2^((b-1)/2), first * 2^(b/2))
    int b = static_cast<int>(std::floor(2.0 * std::log2(ms / kLatencyFirstBound))) + 1;
    return std::clamp(b, 0, kStatementLatencyBuckets - 1);
}

double statement_latency_upper(int bucket) {
    return kLatencyFirstBound * std::exp2(bucket / 2.0);
}

double statement_latency_percentile(const uint32_t (&counts)[kStatementLatencyBuckets], double q, double max_ms) {
    uint64_t total = 0;
    for (uint32_t c : counts) total += c;
    if (total == 0) return 0;
    double rank = q * static_cast<double>(total);
    uint64_t below = 0;
    for (int b = 0; b < kStatementLatencyBuckets; ++b) {
        if (counts[b] == 0 || static_cast<double>(below + counts[b]) < rank) {
            below += counts[b];
            continue;
        }
        double upper = statement_latency_upper(b);
        double lower = b == 0 ? 0 : statement_latency_upper(b - 1);
        double frac = (rank - static_cast<double>(below)) / counts[b];
        double v = b == 0 ? upper * frac : lower * std::pow(upper / lower, frac);
        return std::min(v, max_ms);
    }
    return max_ms;
}

}  // namespace rproxy
