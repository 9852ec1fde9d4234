// Connection accounting shared by all workers: the global client count, clients per role (for
// rolconnlimit), a token bucket per client address (pg_rproxy.connection_rate) and the
// pg_rproxy_connection_events counters. Counts live per worker slot, so a worker that restarts
// drops exactly the connections it had.
#pragma once

#include <cstdint>

#include "core/connection_events.hpp"

namespace rproxy::pg {

void request_connection_limits_shmem();
void init_connection_limits_shmem();
void connection_limits_attach(int slot);  // a (re)started worker: its old counts are gone

// A new TCP connection; false when max_total (>0) clients are already connected.
bool claim_client(int slot, int max_total);
void release_client(int slot);
// An authenticated client of role_oid; false when limit (>=0) connections of the role exist.
bool claim_role(int slot, uint32_t role_oid, int limit);
void release_role(int slot, uint32_t role_oid);
// Takes a token from the address's bucket; false when it is empty.
bool rate_allow(const char* address, double per_second, int burst);

void count_conn_event(ConnEvent e);
void read_conn_events(uint64_t out[kConnEventCount]);

}  // namespace rproxy::pg
