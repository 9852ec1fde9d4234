// The Prometheus counters that had no home yet: statements by verdict and by cache result, the
// latency histogram per upstream, and bytes in and out. One shared-memory slot per worker, written
// only by its worker (plain loads and stores of atomics, no locked instruction, no lock a cache
// hit could wait on) and summed by the scrape. Cumulative across worker restarts, as Prometheus
// counters must be.
#pragma once

#include <string>

#include "core/metrics.hpp"
#include "core/statement_record.hpp"
#include "proxy/worker_host.hpp"

namespace rproxy::pg {

void request_statement_metrics_shmem();
void init_statement_metrics_shmem();
void statement_metrics_attach(int slot);  // a (re)started worker takes its slot's totals over

// Upstreams beyond the slot's table of names count under "other".
void statement_metrics_count(int slot, const StatementRecord& r, const std::string& upstream);
void statement_metrics_publish_bytes(int slot, const WorkerCounters& c);
// Adds every worker's statements, latencies and bytes to s.
void statement_metrics_read(MetricsSnapshot& s);

}  // namespace rproxy::pg
