#include "pg/result_cache.hpp"

#include <signal.h>

#include "core/relation_generations.hpp"
#include "pg/gucs.hpp"
#include "pg/pg_guard.hpp"

namespace rproxy::pg {

namespace {

constexpr int kPartitions = 16;                  // power of two (dynahash partitioning)
constexpr long kFillTimeoutSecs = 60;            // a fill nobody finished is taken over after this
constexpr int kMaxUsage = 5;                     // clock-sweep credit a hit gives
constexpr uint32 kWeightBytes = 64 * 1024;       // each 64kB of payload costs one more sweep credit

enum EntryState : uint8 { kFilling = 1, kReady = 2, kFailed = 3 };

struct IndexKey {
    uint64 h1;
    uint64 h2;
};

struct Entry {
    IndexKey key;  // must be first (dynahash)
    uint8 state;
    int32 owner_pid;
    uint64 fill_id;
    dsa_pointer payload;  // [full key][wire][meta], or InvalidDsaPointer
    uint32 key_len;
    uint32 wire_len;
    uint32 meta_len;
    uint64 rows;
    TimestampTz created;
    TimestampTz expires;  // ready: end of ttl; filling: fill deadline; failed: end of bypass
    pg_atomic_uint32 usage;
    pg_atomic_uint64 hits;
    // The generation counters the result depends on, and their sum when its fill began.
    uint16 gen_buckets[kMaxGenerationBuckets];
    uint8 gen_count;
    uint64 gen_sum;
};

struct Shared {
    int dsa_tranche;
    uint64 budget;
    int max_entries;
    pg_atomic_uint64 next_fill_id;
    pg_atomic_uint64 bytes_used;
    pg_atomic_uint64 entries;
    pg_atomic_uint64 hits, misses, coalesced, evictions, expirations, stores;
    pg_atomic_uint64 uncacheable[kUncacheableCount];
    pg_atomic_uint64 l2[kL2CounterCount];
    char gateway_id[17];
    pg_atomic_uint32 l2_pending[kGenerationBuckets];
    pg_atomic_uint64 l2_reset_wanted, l2_reset_done;
    pg_atomic_uint64 generations[kGenerationBuckets];
    char dsa_place[FLEXIBLE_ARRAY_MEMBER];
};

Shared* shared = nullptr;
HTAB* index_table = nullptr;
LWLockPadded* locks = nullptr;
dsa_area* area = nullptr;  // this process's attachment

size_t dsa_place_size() { return Max(dsa_minimum_size(), static_cast<size_t>(1024 * 1024)); }

Size shared_size() { return add_size(MAXALIGN(offsetof(Shared, dsa_place)), dsa_place_size()); }

void detach_area(int, Datum) {
    if (area) dsa_detach(area);
    area = nullptr;
}

void ensure_area() {
    if (area) return;
    LWLockRegisterTranche(shared->dsa_tranche, "pg_rproxy cache dsa");
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    area = dsa_attach_in_place(shared->dsa_place, nullptr);
    dsa_pin_mapping(area);
    MemoryContextSwitchTo(old);
    before_shmem_exit(detach_area, 0);
}

LWLock* partition_lock(uint32 hash) { return &locks[hash % kPartitions].lock; }

uint64 payload_bytes(const Entry* e) { return uint64(e->key_len) + e->wire_len + e->meta_len; }

// Drops an entry (index lock of its partition held exclusively by the caller).
void remove_entry(Entry* e) {
    if (DsaPointerIsValid(e->payload)) {
        dsa_free(area, e->payload);
        pg_atomic_fetch_sub_u64(&shared->bytes_used, payload_bytes(e));
    }
    IndexKey k = e->key;
    hash_search(index_table, &k, HASH_REMOVE, nullptr);
    pg_atomic_fetch_sub_u64(&shared->entries, 1);
}

void lock_all(LWLockMode mode) {
    for (int i = 0; i < kPartitions; i++) LWLockAcquire(&locks[i].lock, mode);
}

void unlock_all() {
    for (int i = kPartitions - 1; i >= 0; i--) LWLockRelease(&locks[i].lock);
}

bool owner_alive(int32 pid) { return pid == MyProcPid || kill(pid, 0) == 0; }

// Frees room for `need` more payload bytes and one more entry: expired entries first, then a clock
// sweep in which big entries lose their credit faster, so one large result cannot keep many small
// ones out. Takes every partition lock (in order); called only when an insert does not fit.
void evict_for(uint64 need) {
    lock_all(LW_EXCLUSIVE);
    TimestampTz now = GetCurrentTimestamp();
    uint64 budget = shared->budget;
    uint64 target_bytes = budget > need ? (budget - need) * 9 / 10 : 0;
    uint64 target_entries = uint64(shared->max_entries) * 9 / 10;
    auto fits = [&] {
        return pg_atomic_read_u64(&shared->bytes_used) <= target_bytes &&
               pg_atomic_read_u64(&shared->entries) <= target_entries;
    };
    for (int pass = 0; pass <= kMaxUsage + 1 && !fits(); pass++) {
        HASH_SEQ_STATUS scan;
        hash_seq_init(&scan, index_table);
        Entry* e;
        while ((e = static_cast<Entry*>(hash_seq_search(&scan))) != nullptr) {
            bool expired = e->expires <= now;
            if (e->state == kFilling && !(expired || !owner_alive(e->owner_pid))) continue;
            if (pass == 0) {
                if (expired || e->state != kReady) {
                    if (e->state == kReady) pg_atomic_fetch_add_u64(&shared->expirations, 1);
                    remove_entry(e);
                }
                continue;
            }
            uint32 weight = 1 + e->wire_len / kWeightBytes;
            uint32 usage = pg_atomic_read_u32(&e->usage);
            if (usage > weight) {
                pg_atomic_write_u32(&e->usage, usage - weight);
                continue;
            }
            remove_entry(e);
            pg_atomic_fetch_add_u64(&shared->evictions, 1);
            if (fits()) {
                hash_seq_term(&scan);
                break;
            }
        }
    }
    unlock_all();
}

uint64 generation_sum(const uint16* buckets, int n) {
    uint64 sum = 0;
    for (int i = 0; i < n; i++) sum += pg_atomic_read_u64(&shared->generations[buckets[i]]);
    return sum;
}

// No write through the proxy committed to what the entry read since its fill began.
bool fresh(const Entry* e) { return generation_sum(e->gen_buckets, e->gen_count) == e->gen_sum; }

bool full_key_matches(const Entry* e, const CacheKey& key) {
    if (e->key_len != key.full.size() || !DsaPointerIsValid(e->payload)) return false;
    return memcmp(dsa_get_address(area, e->payload), key.full.data(), e->key_len) == 0;
}

void claim(Entry* e, TimestampTz now, uint64* fill_id) {
    e->state = kFilling;
    e->owner_pid = MyProcPid;
    e->fill_id = pg_atomic_fetch_add_u64(&shared->next_fill_id, 1);
    e->payload = InvalidDsaPointer;
    e->key_len = e->wire_len = e->meta_len = 0;
    e->rows = 0;
    e->created = now;
    e->expires = TimestampTzPlusMilliseconds(now, kFillTimeoutSecs * 1000);
    pg_atomic_write_u32(&e->usage, 1);
    pg_atomic_write_u64(&e->hits, 0);
    *fill_id = e->fill_id;
}

enum class Step { Done, NeedCapacity, RetryExclusive, NeedRoom };

// Locks the key's partition exclusively (*lock, to release) and returns the entry if it is still
// the fill this process claimed as fill_id.
Entry* lock_own_fill(const CacheKey& key, uint64 fill_id, LWLock** lock) {
    IndexKey k{key.h1, key.h2};
    uint32 hash = get_hash_value(index_table, &k);
    *lock = partition_lock(hash);
    LWLockAcquire(*lock, LW_EXCLUSIVE);
    Entry* e = static_cast<Entry*>(hash_search_with_hash_value(index_table, &k, hash, HASH_FIND, nullptr));
    return e && e->state == kFilling && e->fill_id == fill_id ? e : nullptr;
}

// One probe under the partition lock. `out` gets the payload appended only when its capacity
// already suffices, so nothing here allocates C++ memory while a lock is held.
Step probe_locked(const CacheKey& key, std::string& out, uint64* fill_id, uint64* rows, bool exclusive, ProbeResult* result,
                  uint32* need) {
    IndexKey k{key.h1, key.h2};
    uint32 hash = get_hash_value(index_table, &k);
    LWLock* lock = partition_lock(hash);
    LWLockAcquire(lock, exclusive ? LW_EXCLUSIVE : LW_SHARED);
    TimestampTz now = GetCurrentTimestamp();
    Entry* e = static_cast<Entry*>(hash_search_with_hash_value(index_table, &k, hash, HASH_FIND, nullptr));
    Step step = Step::Done;
    *result = ProbeResult::Bypass;
    if (e && e->state == kReady && e->expires > now && fresh(e)) {
        if (!full_key_matches(e, key)) {
            *result = ProbeResult::Bypass;  // a 128-bit collision: serve nothing, store nothing
        } else if (out.capacity() - out.size() < e->wire_len) {
            *need = e->wire_len;
            step = Step::NeedCapacity;
        } else {
            const char* p = static_cast<const char*>(dsa_get_address(area, e->payload));
            out.append(p + e->key_len, e->wire_len);
            pg_atomic_fetch_add_u64(&e->hits, 1);
            if (pg_atomic_read_u32(&e->usage) < kMaxUsage) pg_atomic_fetch_add_u32(&e->usage, 1);
            pg_atomic_fetch_add_u64(&shared->hits, 1);
            *rows = e->rows;
            *result = ProbeResult::Hit;
        }
    } else if (e && e->state == kFilling && e->expires > now && owner_alive(e->owner_pid)) {
        *result = ProbeResult::Wait;
    } else if (e && e->state == kFailed && e->expires > now) {
        *result = ProbeResult::Bypass;
    } else if (!exclusive) {
        step = Step::RetryExclusive;  // absent or stale: claim it under the exclusive lock
    } else if (e) {
        if (e->state == kReady) {  // expired or old: its payload goes, the slot is reused for the fill
            dsa_free(area, e->payload);
            pg_atomic_fetch_sub_u64(&shared->bytes_used, payload_bytes(e));
            pg_atomic_fetch_add_u64(&shared->expirations, 1);
        }
        claim(e, now, fill_id);
        pg_atomic_fetch_add_u64(&shared->misses, 1);
        *result = ProbeResult::Claimed;
    } else if (pg_atomic_read_u64(&shared->entries) >= uint64(shared->max_entries)) {
        step = Step::NeedRoom;
    } else {
        bool found;
        e = static_cast<Entry*>(hash_search_with_hash_value(index_table, &k, hash, HASH_ENTER_NULL, &found));
        if (e) {
            pg_atomic_fetch_add_u64(&shared->entries, 1);
            pg_atomic_init_u32(&e->usage, 1);
            pg_atomic_init_u64(&e->hits, 0);
            claim(e, now, fill_id);
            pg_atomic_fetch_add_u64(&shared->misses, 1);
            *result = ProbeResult::Claimed;
        }
    }
    LWLockRelease(lock);
    return step;
}

// Runs fn inside PG_TRY; on a PostgreSQL error every LWLock is released (the workers have no
// transaction abort to do it) and false is returned.
template <class Fn>
bool guarded(Fn&& fn) {
    MemoryContext ctx = CurrentMemoryContext;
    volatile bool ok = true;
    PG_TRY();
    {
        fn();
    }
    PG_CATCH();
    {
        LWLockReleaseAll();
        ErrorData* e = take_error(ctx);
        elog(LOG, "pg_rproxy: result cache bypassed after an error: %s", e->message ? e->message : "");
        FreeErrorData(e);
        ok = false;
    }
    PG_END_TRY();
    return ok;
}

}  // namespace

void request_cache_shmem() {
    RequestAddinShmemSpace(shared_size());
    RequestAddinShmemSpace(hash_estimate_size(guc_cache_max_entries(), sizeof(Entry)));
    RequestNamedLWLockTranche("pg_rproxy cache", kPartitions);
}

void init_cache_shmem() {
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<Shared*>(ShmemInitStruct("pg_rproxy cache", shared_size(), &found));
    HASHCTL info;
    memset(&info, 0, sizeof info);
    info.keysize = sizeof(IndexKey);
    info.entrysize = sizeof(Entry);
    info.num_partitions = kPartitions;
    index_table = ShmemInitHash("pg_rproxy cache index", guc_cache_max_entries(), guc_cache_max_entries(), &info,
                                HASH_ELEM | HASH_BLOBS | HASH_PARTITION);
    locks = GetNamedLWLockTranche("pg_rproxy cache");
    if (!found) {
        shared->budget = guc_cache_size();
        shared->max_entries = guc_cache_max_entries();
        pg_atomic_init_u64(&shared->next_fill_id, 1);
        pg_atomic_init_u64(&shared->bytes_used, 0);
        pg_atomic_init_u64(&shared->entries, 0);
        for (auto* c : {&shared->hits, &shared->misses, &shared->coalesced, &shared->evictions, &shared->expirations,
                        &shared->stores})
            pg_atomic_init_u64(c, 0);
        for (int i = 0; i < kUncacheableCount; i++) pg_atomic_init_u64(&shared->uncacheable[i], 0);
        for (int i = 0; i < kL2CounterCount; i++) pg_atomic_init_u64(&shared->l2[i], 0);
        for (uint32 i = 0; i < kGenerationBuckets; i++) pg_atomic_init_u32(&shared->l2_pending[i], 0);
        pg_atomic_init_u64(&shared->l2_reset_wanted, 0);
        pg_atomic_init_u64(&shared->l2_reset_done, 0);
        uint64 id = 0;
        if (!pg_strong_random(&id, sizeof id)) id = uint64(MyStartTime) ^ (uint64(MyProcPid) << 32);
        snprintf(shared->gateway_id, sizeof shared->gateway_id, "%016llx", static_cast<unsigned long long>(id));
        for (uint32 i = 0; i < kGenerationBuckets; i++) pg_atomic_init_u64(&shared->generations[i], 0);
        // The postmaster cannot create DSM segments: it only lays the area out and pins it. The
        // hard limit leaves room for allocator overhead; the budget itself is enforced by eviction.
        shared->dsa_tranche = LWLockNewTrancheId();
        dsa_area* dsa = dsa_create_in_place(shared->dsa_place, dsa_place_size(), shared->dsa_tranche, nullptr);
        dsa_pin(dsa);
        dsa_set_size_limit(dsa, static_cast<size_t>(shared->budget) * 2 + 16 * 1024 * 1024);
        dsa_detach(dsa);
    }
    LWLockRelease(AddinShmemInitLock);
}

ProbeResult cache_probe(const CacheKey& key, std::string& out, uint64_t* fill_id, uint64_t* rows) {
    if (!shared) return ProbeResult::Bypass;
    ProbeResult result = ProbeResult::Bypass;
    for (int attempt = 0; attempt < 4; ++attempt) {
        Step step = Step::Done;
        uint32 need = 0;
        bool exclusive = attempt > 0;
        uint64 id = 0;
        if (!guarded([&] {
                ensure_area();
                step = probe_locked(key, out, &id, rows, exclusive, &result, &need);
            }))
            return ProbeResult::Bypass;
        *fill_id = id;
        if (step == Step::Done) return result;
        if (step == Step::NeedCapacity) out.reserve(out.size() + need);  // outside every lock
        if (step == Step::NeedRoom && !guarded([&] { evict_for(0); })) return ProbeResult::Bypass;
    }
    return ProbeResult::Bypass;
}

bool cache_store(const CacheKey& key, uint64_t fill_id, const std::string& wire, const CacheEntryMeta& meta) {
    if (!shared) return false;
    if (meta.generation_buckets.size() > kMaxGenerationBuckets) {
        cache_abandon(key, fill_id, 1);
        return false;
    }
    uint16 buckets[kMaxGenerationBuckets];
    int nbuckets = 0;
    for (uint32_t b : meta.generation_buckets) buckets[nbuckets++] = uint16(b % kGenerationBuckets);
    std::string meta_blob = meta.role + '\0' + meta.statement + '\0' + meta.relations + '\0' + meta.caller_key + '\0';
    uint64 need = key.full.size() + wire.size() + meta_blob.size();
    if (need > shared->budget) {
        cache_abandon(key, fill_id, meta.ttl_seconds);
        return false;
    }
    bool stored = false;
    guarded([&] {
        ensure_area();
        if (pg_atomic_read_u64(&shared->bytes_used) + need > shared->budget) evict_for(need);
        dsa_pointer dp = dsa_allocate_extended(area, need, DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE);
        if (!DsaPointerIsValid(dp)) {
            evict_for(need);  // fragmentation or the hard limit: make room once more
            dp = dsa_allocate_extended(area, need, DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE);
        }
        if (!DsaPointerIsValid(dp)) return;
        char* p = static_cast<char*>(dsa_get_address(area, dp));
        memcpy(p, key.full.data(), key.full.size());
        memcpy(p + key.full.size(), wire.data(), wire.size());
        memcpy(p + key.full.size() + wire.size(), meta_blob.data(), meta_blob.size());

        LWLock* lock;
        // Only the fill this client claimed: a reset or invalidation since then discards it.
        Entry* e = lock_own_fill(key, fill_id, &lock);
        // A write committed to what it read since the fill began: the result may be older than it.
        if (e && generation_sum(buckets, nbuckets) != meta.generation_sum) e = nullptr;
        if (e) {
            TimestampTz now = GetCurrentTimestamp();
            memcpy(e->gen_buckets, buckets, sizeof(uint16) * nbuckets);
            e->gen_count = uint8(nbuckets);
            e->gen_sum = meta.generation_sum;
            e->state = kReady;
            e->payload = dp;
            e->key_len = key.full.size();
            e->wire_len = wire.size();
            e->meta_len = meta_blob.size();
            e->rows = meta.rows;
            e->created = now;
            e->expires = TimestampTzPlusMilliseconds(now, int64(meta.ttl_seconds) * 1000);
            pg_atomic_fetch_add_u64(&shared->bytes_used, need);
            pg_atomic_fetch_add_u64(&shared->stores, 1);
            stored = true;
        }
        LWLockRelease(lock);
        if (!stored) dsa_free(area, dp);
    });
    if (!stored) cache_abandon(key, fill_id, 1);
    return stored;
}

void cache_abandon(const CacheKey& key, uint64_t fill_id, int bypass_seconds) {
    if (!shared) return;
    guarded([&] {
        LWLock* lock;
        if (Entry* e = lock_own_fill(key, fill_id, &lock)) {
            // Waiters stop waiting and run the statement themselves until the bypass ends.
            e->state = kFailed;
            e->expires = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), int64(Max(bypass_seconds, 1)) * 1000);
        }
        LWLockRelease(lock);
    });
}

void cache_count_uncacheable(Uncacheable reason) {
    if (shared) pg_atomic_fetch_add_u64(&shared->uncacheable[static_cast<int>(reason)], 1);
}

uint64_t cache_generation_sum(const std::vector<uint32_t>& buckets) {
    if (!shared) return 0;
    uint64 sum = 0;
    for (uint32_t b : buckets) sum += pg_atomic_read_u64(&shared->generations[b % kGenerationBuckets]);
    return sum;
}

void cache_bump_generations(const std::vector<uint32_t>& buckets) {
    if (!shared) return;
    for (uint32_t b : buckets) pg_atomic_fetch_add_u64(&shared->generations[b % kGenerationBuckets], 1);
}

void cache_count_coalesced() {
    if (shared) pg_atomic_fetch_add_u64(&shared->coalesced, 1);
}

uint64_t cache_reset_guarded() {
    uint64_t n = 0;
    guarded([&] { n = cache_reset(); });
    return n;
}

namespace {
// "public.orders" matches entries naming public.orders or orders; "orders" matches any schema.
bool relation_matches(const char* wanted, const char* listed) {
    const char* wdot = strchr(wanted, '.');
    const char* ldot = strchr(listed, '.');
    if (strcmp(wanted, listed) == 0) return true;
    if (wdot && !ldot) return strcmp(wdot + 1, listed) == 0;
    if (!wdot && ldot) return strcmp(wanted, ldot + 1) == 0;
    return false;
}

// role, statement, relations, caller key: NUL-terminated, in this order.
const char* meta_field(const Entry* e, int n) {
    const char* f = static_cast<const char*>(dsa_get_address(area, e->payload)) + e->key_len + e->wire_len;
    for (int i = 0; i < n; ++i) f += strlen(f) + 1;
    return f;
}

bool names_relation(const Entry* e, const char* relation) {
    const char* meta = static_cast<const char*>(dsa_get_address(area, e->payload)) + e->key_len + e->wire_len;
    const char* rels = meta + strlen(meta) + 1;
    rels += strlen(rels) + 1;
    bool hit = false;
    char* copy = pstrdup(rels);
    for (char* tok = strtok(copy, ","); tok && !hit; tok = strtok(nullptr, ",")) hit = relation_matches(relation, tok);
    pfree(copy);
    return hit;
}

// Removes the entries drop() selects, under every partition lock; counts the ready ones removed.
template <class Drop>
uint64 remove_where(Drop drop) {
    ensure_area();
    uint64 dropped = 0;
    lock_all(LW_EXCLUSIVE);
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, index_table);
    Entry* e;
    while ((e = static_cast<Entry*>(hash_seq_search(&scan))) != nullptr) {
        if (!drop(e)) continue;
        if (e->state == kReady) dropped++;
        remove_entry(e);
    }
    unlock_all();
    return dropped;
}
}  // namespace

uint64_t cache_invalidate_guarded(const std::string& relation) {
    uint64_t n = 0;
    guarded([&] { n = cache_invalidate(relation.c_str()); });
    return n;
}

uint64_t cache_invalidate_key_guarded(const std::string& prefix) {
    uint64_t n = 0;
    guarded([&] { n = cache_invalidate_key(prefix.c_str()); });
    return n;
}

void cache_count_l2(L2Counter c, uint64_t n) {
    if (shared) pg_atomic_fetch_add_u64(&shared->l2[static_cast<int>(c)], n);
}

void cache_l2_pending(const std::vector<uint32_t>& buckets, int delta) {
    if (!shared) return;
    for (uint32_t b : buckets) {
        if (delta > 0) pg_atomic_fetch_add_u32(&shared->l2_pending[b % kGenerationBuckets], delta);
        else pg_atomic_fetch_sub_u32(&shared->l2_pending[b % kGenerationBuckets], -delta);
    }
}

bool cache_l2_blocked(const std::vector<uint32_t>& buckets) {
    if (!shared) return true;
    if (cache_l2_reset_owed()) return true;
    for (uint32_t b : buckets)
        if (pg_atomic_read_u32(&shared->l2_pending[b % kGenerationBuckets])) return true;
    return false;
}

uint64_t cache_l2_reset_owed() {
    if (!shared) return 0;
    uint64 wanted = pg_atomic_read_u64(&shared->l2_reset_wanted);
    return wanted != pg_atomic_read_u64(&shared->l2_reset_done) ? wanted : 0;
}

void cache_l2_owe_reset() {
    if (shared) pg_atomic_fetch_add_u64(&shared->l2_reset_wanted, 1);
}

void cache_l2_reset_paid(uint64_t generation) {
    if (!shared) return;
    // done only moves forward: a reset that began before a later failure does not pay for it
    uint64 done = pg_atomic_read_u64(&shared->l2_reset_done);
    while (done < generation && !pg_atomic_compare_exchange_u64(&shared->l2_reset_done, &done, generation)) {
    }
}

std::string cache_gateway_id() { return shared ? std::string(shared->gateway_id) : std::string(); }

uint64_t cache_invalidate_key(const char* prefix) {
    if (!shared) return 0;
    size_t len = strlen(prefix);
    // Fills in progress have no caller key recorded yet: dropped too, as by cache_invalidate().
    return remove_where([prefix, len](const Entry* e) {
        if (e->state == kFilling) return true;
        if (e->state != kReady) return false;
        const char* key = meta_field(e, 3);
        return key[0] != '\0' && strncmp(key, prefix, len) == 0;
    });
}

uint64_t cache_reset() {
    if (!shared) return 0;
    return remove_where([](const Entry*) { return true; });
}

uint64_t cache_invalidate(const char* relation) {
    if (!shared) return 0;
    // A fill in progress has no relations recorded yet: it is dropped too (and then discarded).
    return remove_where([relation](const Entry* e) {
        return e->state == kFilling || (e->state == kReady && names_relation(e, relation));
    });
}

CacheStats cache_stats() {
    CacheStats s{};
    if (!shared) return s;
    s.hits = pg_atomic_read_u64(&shared->hits);
    s.misses = pg_atomic_read_u64(&shared->misses);
    s.coalesced = pg_atomic_read_u64(&shared->coalesced);
    s.evictions = pg_atomic_read_u64(&shared->evictions);
    s.expirations = pg_atomic_read_u64(&shared->expirations);
    s.stores = pg_atomic_read_u64(&shared->stores);
    s.entries = pg_atomic_read_u64(&shared->entries);
    s.bytes_used = pg_atomic_read_u64(&shared->bytes_used);
    s.bytes_budget = shared->budget;
    s.max_entries = shared->max_entries;
    for (int i = 0; i < kUncacheableCount; i++) s.uncacheable[i] = pg_atomic_read_u64(&shared->uncacheable[i]);
    for (int i = 0; i < kL2CounterCount; i++) s.l2[i] = pg_atomic_read_u64(&shared->l2[i]);
    return s;
}

void cache_entries(void (*emit)(const CacheEntryView&, void*), void* arg) {
    if (!shared) return;
    ensure_area();
    lock_all(LW_SHARED);
    TimestampTz now = GetCurrentTimestamp();
    HASH_SEQ_STATUS scan;
    hash_seq_init(&scan, index_table);
    Entry* e;
    while ((e = static_cast<Entry*>(hash_seq_search(&scan))) != nullptr) {
        if (e->state != kReady || e->expires <= now) continue;
        const char* meta = static_cast<const char*>(dsa_get_address(area, e->payload)) + e->key_len + e->wire_len;
        CacheEntryView v;
        v.h1 = e->key.h1;
        v.h2 = e->key.h2;
        v.role = meta;
        v.statement = meta + strlen(meta) + 1;
        v.relations = v.statement + strlen(v.statement) + 1;
        v.bytes = e->wire_len;
        v.rows = e->rows;
        v.hits = pg_atomic_read_u64(&e->hits);
        v.age_seconds = double(now - e->created) / USECS_PER_SEC;
        v.ttl_left_seconds = double(e->expires - now) / USECS_PER_SEC;
        emit(v, arg);
    }
    unlock_all();
}

}  // namespace rproxy::pg
