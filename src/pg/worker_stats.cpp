#include "pg/worker_stats.hpp"

#include "pg/gucs.hpp"
#include "pg/server_headers.hpp"

extern "C" {
#include "storage/spin.h"
}

#include <signal.h>

namespace rproxy::pg {

namespace {

constexpr int kCancelQueue = 32;

struct Slot {
    slock_t cancel_lock;
    int cancel_count;
    int32 cancel_pid[kCancelQueue];
    int32 cancel_key[kCancelQueue];
    pg_atomic_uint32 pid;
    pg_atomic_uint32 clients;
    pg_atomic_uint32 upstream_busy;
    pg_atomic_uint32 upstream_idle;
    pg_atomic_uint64 statements;
    pg_atomic_uint32 parked_clients;
    pg_atomic_uint64 rejections[kRejectReasonCount];  // survive worker restarts: cumulative
};

struct StatsShmem {
    int nslots;
    Slot slots[FLEXIBLE_ARRAY_MEMBER];
};

StatsShmem* stats = nullptr;

Size stats_size(int n) { return add_size(offsetof(StatsShmem, slots), mul_size(sizeof(Slot), n)); }

Slot* slot_at(int i) {
    if (!stats || i < 0 || i >= stats->nslots) return nullptr;
    return &stats->slots[i];
}

}  // namespace

void request_worker_stats_shmem() { RequestAddinShmemSpace(stats_size(guc_workers())); }

void init_worker_stats_shmem() {
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    stats = static_cast<StatsShmem*>(ShmemInitStruct("pg_rproxy worker stats", stats_size(guc_workers()), &found));
    if (!found) {
        stats->nslots = guc_workers();
        for (int i = 0; i < stats->nslots; ++i) {
            Slot* s = &stats->slots[i];
            SpinLockInit(&s->cancel_lock);
            s->cancel_count = 0;
            pg_atomic_init_u32(&s->pid, 0);
            pg_atomic_init_u32(&s->clients, 0);
            pg_atomic_init_u32(&s->upstream_busy, 0);
            pg_atomic_init_u32(&s->upstream_idle, 0);
            pg_atomic_init_u64(&s->statements, 0);
            pg_atomic_init_u32(&s->parked_clients, 0);
            for (int r = 0; r < kRejectReasonCount; ++r) pg_atomic_init_u64(&s->rejections[r], 0);
        }
    }
    LWLockRelease(AddinShmemInitLock);
}

void worker_stats_attach(int slot, int pid) {
    if (Slot* s = slot_at(slot)) {
        pg_atomic_write_u32(&s->clients, 0);
        pg_atomic_write_u32(&s->upstream_busy, 0);
        pg_atomic_write_u32(&s->upstream_idle, 0);
        pg_atomic_write_u64(&s->statements, 0);
        pg_atomic_write_u32(&s->parked_clients, 0);
        pg_atomic_write_u32(&s->pid, static_cast<uint32>(pid));
    }
}

void worker_stats_publish(int slot, const WorkerCounters& c) {
    if (Slot* s = slot_at(slot)) {
        pg_atomic_write_u32(&s->clients, c.clients);
        pg_atomic_write_u32(&s->upstream_busy, c.upstream_busy);
        pg_atomic_write_u32(&s->upstream_idle, c.upstream_idle);
        pg_atomic_write_u64(&s->statements, c.statements);
        pg_atomic_write_u32(&s->parked_clients, c.parked_clients);
    }
}

void worker_stats_detach(int slot) {
    if (Slot* s = slot_at(slot)) pg_atomic_write_u32(&s->pid, 0);
}

void worker_stats_count_rejection(int slot, RejectReason reason) {
    if (Slot* s = slot_at(slot)) pg_atomic_fetch_add_u64(&s->rejections[static_cast<int>(reason)], 1);
}

void worker_stats_rejections(uint64_t out[kRejectReasonCount]) {
    for (int r = 0; r < kRejectReasonCount; ++r) out[r] = 0;
    for (int i = 0; stats && i < stats->nslots; ++i)
        for (int r = 0; r < kRejectReasonCount; ++r) out[r] += pg_atomic_read_u64(&stats->slots[i].rejections[r]);
}

bool worker_post_cancel(int slot, int32_t pid, int32_t key) {
    Slot* s = slot_at(slot);
    if (!s) return false;
    uint32 owner = pg_atomic_read_u32(&s->pid);
    if (owner == 0) return false;
    bool queued = false;
    SpinLockAcquire(&s->cancel_lock);
    if (s->cancel_count < kCancelQueue) {
        s->cancel_pid[s->cancel_count] = pid;
        s->cancel_key[s->cancel_count] = key;
        s->cancel_count++;
        queued = true;
    }
    SpinLockRelease(&s->cancel_lock);
    if (queued) kill(static_cast<pid_t>(owner), SIGUSR2);
    return queued;
}

int worker_take_cancels(int slot, int32_t* pids, int32_t* keys, int max) {
    Slot* s = slot_at(slot);
    if (!s) return 0;
    SpinLockAcquire(&s->cancel_lock);
    int n = Min(s->cancel_count, max);
    for (int i = 0; i < n; i++) {
        pids[i] = s->cancel_pid[i];
        keys[i] = s->cancel_key[i];
    }
    s->cancel_count = 0;
    SpinLockRelease(&s->cancel_lock);
    return n;
}

int worker_stats_slots() { return stats ? stats->nslots : 0; }

bool worker_stats_read(int slot, WorkerStatsRow* row) {
    Slot* s = slot_at(slot);
    if (!s) return false;
    uint32 pid = pg_atomic_read_u32(&s->pid);
    if (pid == 0) return false;
    row->slot = slot;
    row->pid = static_cast<int>(pid);
    row->counters.clients = pg_atomic_read_u32(&s->clients);
    row->counters.upstream_busy = pg_atomic_read_u32(&s->upstream_busy);
    row->counters.upstream_idle = pg_atomic_read_u32(&s->upstream_idle);
    row->counters.statements = pg_atomic_read_u64(&s->statements);
    row->counters.parked_clients = pg_atomic_read_u32(&s->parked_clients);
    return true;
}

}  // namespace rproxy::pg
