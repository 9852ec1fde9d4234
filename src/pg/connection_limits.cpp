#include "pg/connection_limits.hpp"

#include <cstring>

#include "pg/gucs.hpp"
#include "pg/server_headers.hpp"

extern "C" {
#include "common/hashfn.h"
#include "storage/spin.h"
}

namespace rproxy::pg {

namespace {

constexpr int kRolesPerSlot = 128;
constexpr int kRateSlots = 1024;
constexpr int kRateProbe = 8;

struct RoleCount {
    Oid role;
    int count;
};

struct SlotCounts {
    int clients;
    RoleCount roles[kRolesPerSlot];
};

struct RateBucket {
    char address[64];
    double tokens;
    TimestampTz last;
};

struct LimitsShmem {
    slock_t lock;  // guards everything but the event counters; held for a few loads and stores
    int nslots;
    pg_atomic_uint64 events[kConnEventCount];
    RateBucket rates[kRateSlots];
    SlotCounts slots[FLEXIBLE_ARRAY_MEMBER];
};

LimitsShmem* shm = nullptr;

Size limits_size(int n) { return add_size(offsetof(LimitsShmem, slots), mul_size(sizeof(SlotCounts), Max(n, 1))); }

SlotCounts* slot_at(int slot) { return shm && slot >= 0 && slot < shm->nslots ? &shm->slots[slot] : nullptr; }

int role_total(Oid role) {
    int total = 0;
    for (int s = 0; s < shm->nslots; s++)
        for (auto& rc : shm->slots[s].roles)
            if (rc.role == role) total += rc.count;
    return total;
}

}  // namespace

void request_connection_limits_shmem() { RequestAddinShmemSpace(limits_size(guc_workers())); }

void init_connection_limits_shmem() {
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shm = static_cast<LimitsShmem*>(ShmemInitStruct("pg_rproxy connection limits", limits_size(guc_workers()), &found));
    if (!found) {
        memset(shm, 0, limits_size(guc_workers()));
        SpinLockInit(&shm->lock);
        shm->nslots = guc_workers();
        for (auto& e : shm->events) pg_atomic_init_u64(&e, 0);
    }
    LWLockRelease(AddinShmemInitLock);
}

void connection_limits_attach(int slot) {
    SlotCounts* s = slot_at(slot);
    if (!s) return;
    SpinLockAcquire(&shm->lock);
    memset(s, 0, sizeof *s);
    SpinLockRelease(&shm->lock);
}

bool claim_client(int slot, int max_total) {
    SlotCounts* s = slot_at(slot);
    if (!s) return true;
    SpinLockAcquire(&shm->lock);
    int total = 0;
    for (int i = 0; i < shm->nslots; i++) total += shm->slots[i].clients;
    bool ok = max_total <= 0 || total < max_total;
    if (ok) s->clients++;
    SpinLockRelease(&shm->lock);
    return ok;
}

void release_client(int slot) {
    SlotCounts* s = slot_at(slot);
    if (!s) return;
    SpinLockAcquire(&shm->lock);
    if (s->clients > 0) s->clients--;
    SpinLockRelease(&shm->lock);
}

bool claim_role(int slot, uint32_t role_oid, int limit) {
    SlotCounts* s = slot_at(slot);
    if (!s) return true;
    SpinLockAcquire(&shm->lock);
    bool ok = limit < 0 || role_total(role_oid) < limit;
    if (ok) {
        RoleCount* free_entry = nullptr;
        RoleCount* mine = nullptr;
        for (auto& rc : s->roles) {
            if (rc.role == role_oid && rc.count > 0) mine = &rc;
            if (!free_entry && rc.count == 0) free_entry = &rc;
        }
        if (!mine && free_entry) {
            free_entry->role = role_oid;
            mine = free_entry;
        }
        // More distinct roles on one worker than entries: only the limit check loses precision.
        if (mine) mine->count++;
    }
    SpinLockRelease(&shm->lock);
    return ok;
}

void release_role(int slot, uint32_t role_oid) {
    SlotCounts* s = slot_at(slot);
    if (!s) return;
    SpinLockAcquire(&shm->lock);
    for (auto& rc : s->roles) {
        if (rc.role == role_oid && rc.count > 0) {
            rc.count--;
            break;
        }
    }
    SpinLockRelease(&shm->lock);
}

bool rate_allow(const char* address, double per_second, int burst) {
    if (!shm || per_second <= 0) return true;
    double capacity = burst > 0 ? burst : Max(per_second, 1.0);
    TimestampTz now = GetCurrentTimestamp();
    uint32 h = hash_bytes(reinterpret_cast<const unsigned char*>(address), static_cast<int>(strlen(address)));
    SpinLockAcquire(&shm->lock);
    RateBucket* bucket = nullptr;
    RateBucket* oldest = nullptr;
    for (int i = 0; i < kRateProbe; i++) {
        RateBucket* b = &shm->rates[(h + i) % kRateSlots];
        if (strncmp(b->address, address, sizeof b->address) == 0) {
            bucket = b;
            break;
        }
        if (!oldest || b->last < oldest->last) oldest = b;
    }
    if (!bucket) {  // a new address takes the stalest bucket nearby, starting full
        bucket = oldest;
        strlcpy(bucket->address, address, sizeof bucket->address);
        bucket->tokens = capacity;
        bucket->last = now;
    }
    double elapsed = static_cast<double>(now - bucket->last) / USECS_PER_SEC;
    bucket->tokens = Min(capacity, bucket->tokens + elapsed * per_second);
    bucket->last = now;
    bool ok = bucket->tokens >= 1.0;
    if (ok) bucket->tokens -= 1.0;
    SpinLockRelease(&shm->lock);
    return ok;
}

void count_conn_event(ConnEvent e) {
    if (shm) pg_atomic_fetch_add_u64(&shm->events[static_cast<int>(e)], 1);
}

void read_conn_events(uint64_t out[kConnEventCount]) {
    for (int i = 0; i < kConnEventCount; i++) out[i] = shm ? pg_atomic_read_u64(&shm->events[i]) : 0;
}

}  // namespace rproxy::pg
