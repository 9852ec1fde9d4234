#include "pg/worker_stats.hpp"

#include "pg/gucs.hpp"
#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {

struct Slot {
    pg_atomic_uint32 pid;
    pg_atomic_uint32 clients;
    pg_atomic_uint32 upstream_busy;
    pg_atomic_uint32 upstream_idle;
    pg_atomic_uint64 statements;
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
            pg_atomic_init_u32(&s->pid, 0);
            pg_atomic_init_u32(&s->clients, 0);
            pg_atomic_init_u32(&s->upstream_busy, 0);
            pg_atomic_init_u32(&s->upstream_idle, 0);
            pg_atomic_init_u64(&s->statements, 0);
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
        pg_atomic_write_u32(&s->pid, static_cast<uint32>(pid));
    }
}

void worker_stats_publish(int slot, const WorkerCounters& c) {
    if (Slot* s = slot_at(slot)) {
        pg_atomic_write_u32(&s->clients, c.clients);
        pg_atomic_write_u32(&s->upstream_busy, c.upstream_busy);
        pg_atomic_write_u32(&s->upstream_idle, c.upstream_idle);
        pg_atomic_write_u64(&s->statements, c.statements);
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
    return true;
}

}  // namespace rproxy::pg
