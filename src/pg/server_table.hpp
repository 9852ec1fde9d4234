// The pg_rproxy_servers view's data and the servers' shared health: one shared-memory slot per
// (upstream, host, port) any worker used, and one per upstream (host "") for
// pg_rproxy_upstream_stats. A health check is claimed by one worker per interval
// (compare-and-swap on the slot's next check time); what it finds is read by all. Each worker
// publishes its own connection counts per slot, summed by the view.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/server_state.hpp"

namespace rproxy::pg {

void request_server_table_shmem();
void init_server_table_shmem();

// -1 when the table is full (the server then counts as healthy and is not shown).
int server_table_slot(const std::string& upstream, const std::string& host, const std::string& port);
ServerState server_table_state(int slot);
bool server_table_claim_check(int slot, std::chrono::milliseconds interval);
void server_table_report(int slot, const ServerCheck& check);
void server_table_publish(int worker_slot, const std::vector<ServerCounts>& counts);

struct ServerRow {
    std::string upstream, host, port;
    ServerCheck check;
    bool checked = false;
    int64_t last_check = 0;  // TimestampTz
    uint32_t busy = 0, idle = 0, clients = 0;
    uint64_t statements = 0, cache_hits = 0;
    uint64_t errors = 0;  // failed checks and connection attempts since the slot was registered
};
void server_table_scan(const std::function<void(const ServerRow&)>& visit);

}  // namespace rproxy::pg
