// The result cache in shared memory, shared by every listener worker: a fixed-size index
// (partitioned dynahash, one LWLock per partition) whose entries point at payloads in an in-place
// DSA. A payload is [full key][wire bytes][metadata]. No lock is ever held across network I/O: a
// hit appends the bytes to the caller's buffer under a shared partition lock, nothing more.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cache_types.hpp"

namespace rproxy::pg {

void request_cache_shmem();  // shmem_request_hook
void init_cache_shmem();     // shmem_startup_hook

// Never throw a PostgreSQL error; on one, every LWLock is released and the cache is bypassed.
ProbeResult cache_probe(const CacheKey& key, std::string& out, uint64_t* fill_id, uint64_t* rows);
bool cache_store(const CacheKey& key, uint64_t fill_id, const std::string& wire, const CacheEntryMeta& meta);
void cache_abandon(const CacheKey& key, uint64_t fill_id, int bypass_seconds);
void cache_count_uncacheable(Uncacheable reason);
// core/relation_generations' counters.
uint64_t cache_generation_sum(const std::vector<uint32_t>& buckets);
void cache_bump_generations(const std::vector<uint32_t>& buckets);
void cache_count_coalesced();

uint64_t cache_reset_guarded();  // for the workers (SELECT rustproxy_cache_reset() through the proxy)
uint64_t cache_invalidate_guarded(const std::string& relation);  // another gateway's invalidations
uint64_t cache_invalidate_key_guarded(const std::string& prefix);
void cache_count_l2(L2Counter c, uint64_t n);
void cache_l2_pending(const std::vector<uint32_t>& buckets, int delta);
bool cache_l2_blocked(const std::vector<uint32_t>& buckets);
uint64_t cache_l2_reset_owed();
void cache_l2_owe_reset();  // also from backends: an SQL function that could not reach Redis
void cache_l2_reset_paid(uint64_t generation);
// This gateway's name on the second level's invalidation channel (random, made at startup).
std::string cache_gateway_id();

// For the SQL functions (may raise errors: they run in a normal transaction).
uint64_t cache_reset();
uint64_t cache_invalidate(const char* relation);
uint64_t cache_invalidate_key(const char* prefix);  // entries whose parameter hook CACHE_KEY starts with it
struct CacheStats {
    uint64_t hits, misses, coalesced, evictions, expirations, stores, entries, bytes_used, bytes_budget, max_entries;
    uint64_t uncacheable[kUncacheableCount];
    uint64_t l2[kL2CounterCount];
};
CacheStats cache_stats();
// Calls emit for every ready entry while the index is locked shared: emit must only build tuples.
struct CacheEntryView {
    uint64_t h1, h2;
    const char* statement;
    const char* role;
    const char* relations;
    uint64_t bytes, rows, hits;
    double age_seconds, ttl_left_seconds;
};
void cache_entries(void (*emit)(const CacheEntryView&, void*), void* arg);

}  // namespace rproxy::pg
