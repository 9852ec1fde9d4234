// Shared-memory result cache: the types both sides of the layer boundary use. The proxy layer
// builds keys and decides what may be cached; the pg layer stores payloads in shared memory.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace rproxy {

// The full key (compared on every hit) and two independent 64-bit hashes of it (the index key).
struct CacheKey {
    uint64_t h1 = 0;
    uint64_t h2 = 0;
    std::string full;
};

struct CacheConfig {
    bool enabled = true;
    int ttl_seconds = 900;
    int ttl_jitter_seconds = 0;
    std::size_t max_entry_size = 1024 * 1024;
    bool catalog_queries = false;
    bool client_cache_reset = true;  // SELECT rustproxy_cache_reset() through the proxy port
    // The second level (proxy/l2_cache): empty redis_url is off.
    std::string redis_url;
    std::string redis_password;  // from pg_rproxy.redis_password_file: overrides the URL's
    int redis_timeout_ms = 50;
    std::size_t redis_max_entry_size = 1024 * 1024;
    std::string redis_prefix = "pg_rproxy:";
    bool parameter_hooks = false;  // core/parameter_hook
    std::string gateway_id;        // this gateway's name on the invalidation channel
};

// The second level's statistics (pg_rproxy_cache_stats), kept in shared memory beside the first's.
enum class L2Counter {
    Hits, Misses, Errors, Corrupt, Stores, BytesRead, BytesWritten, Waits, HookUnknownOptions, Count
};
constexpr int kL2CounterCount = static_cast<int>(L2Counter::Count);

// Why a statement the firewall allowed was not served from or stored in the cache.
enum class Uncacheable {
    Disabled, NotDeterministic, InTransaction, SessionState, CatalogQuery, Hint, TooLarge, Error, Count
};
const char* uncacheable_name(Uncacheable u);
constexpr int kUncacheableCount = static_cast<int>(Uncacheable::Count);

enum class ProbeResult {
    Hit,      // the payload was appended to the caller's buffer
    Claimed,  // nobody has it: the caller runs the statement and stores (or abandons) the result
    Wait,     // another client is running it right now: ask again shortly
    Bypass,   // not cacheable at the moment (a recent fill failed, or no room): just run it
};

struct CacheEntryMeta {
    uint64_t rows = 0;
    int ttl_seconds = 0;
    std::string role;
    std::string statement;
    std::string relations;  // comma separated, as the statement names them
    std::string caller_key;  // a parameter hook's CACHE_KEY
    // core/relation_generations: the counters the result depends on, and their sum when its fill
    // began. A result whose counters moved since is not stored.
    std::vector<uint32_t> generation_buckets;
    uint64_t generation_sum = 0;
};

}  // namespace rproxy
