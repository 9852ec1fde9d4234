// Per-worker counters in shared memory, written by each worker for its own slot and read by the
// pg_rproxy_workers view. Plain atomics: readers tolerate a slightly stale mix of counters.
#pragma once

#include <cstdint>

#include "proxy/worker_host.hpp"

namespace rproxy::pg {

void request_worker_stats_shmem();  // from shmem_request_hook
void init_worker_stats_shmem();     // from shmem_startup_hook

void worker_stats_attach(int slot, int pid);
void worker_stats_publish(int slot, const WorkerCounters& c);
void worker_stats_detach(int slot);
void worker_stats_count_rejection(int slot, RejectReason reason);
// A CancelRequest for a client of another worker: queued in that worker's mailbox, which is then
// woken with SIGUSR2. False when the worker is not running or its mailbox is full.
bool worker_post_cancel(int slot, int32_t pid, int32_t key);
int worker_take_cancels(int slot, int32_t* pids, int32_t* keys, int max);
// Rejections by reason summed over all workers, indexed by RejectReason.
void worker_stats_rejections(uint64_t out[kRejectReasonCount]);

struct WorkerStatsRow {
    int slot;
    int pid;
    WorkerCounters counters;
};
int worker_stats_slots();
bool worker_stats_read(int slot, WorkerStatsRow* row);  // false if the slot has no live worker

}  // namespace rproxy::pg
