// The pg_rproxy_sessions view's data: one shared-memory entry per authenticated client. Each
// worker owns a fixed partition and is its only writer, so admitting a client takes no lock;
// readers copy entries under a change counter, as PostgreSQL's backend status array does.
#pragma once

#include <cstdint>
#include <functional>

#include "core/session_info.hpp"

namespace rproxy::pg {

void request_session_table_shmem();
void init_session_table_shmem();
void session_table_attach(int slot);  // a (re)started worker: its old sessions are gone

// Returns a handle for session_table_remove, or -1 when the worker's partition is full (the
// session works, it just is not shown).
int session_table_add(int slot, const SessionInfo& info);
void session_table_remove(int slot, int handle);
// Why the session holds its upstream connection ("" when it does not): written when it changes.
void session_table_set_pinned(int slot, int handle, const char* reason);

struct SessionRow {
    int slot;
    int worker_pid;
    int64_t connected_at;  // TimestampTz
    SessionInfo info;
};
void session_table_scan(const std::function<void(const SessionRow&)>& visit);
// Sessions holding their upstream connection, for the metrics endpoint: no copies, no strings.
int session_table_count_pinned();

}  // namespace rproxy::pg
