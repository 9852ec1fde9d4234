// pg_rproxy_statements: per-statement statistics in shared memory, in the manner of
// pg_stat_statements. Each worker owns one partition and is its only writer (a sequence counter
// per entry lets readers copy it consistently), so recording never waits on a lock and a cache
// hit never waits on a reader. Readers sum the partitions per (upstream, role, digest).
#pragma once

#include <string_view>

#include "core/statement_record.hpp"

namespace rproxy::pg {

void request_statement_stats_shmem();
void init_statement_stats_shmem();

// The worker of this slot takes its partition over (after a restart its entries are kept).
void statement_stats_attach(int slot);
void statement_stats_record(const StatementRecord& r, std::string_view upstream, std::string_view role);

}  // namespace rproxy::pg
