// pg_rproxy.redis and the second cache level's other settings (proxy/l2_cache), and the parameter
// hooks (core/parameter_hook).
#include "core/redis_url.hpp"
#include "pg/gucs.hpp"
#include "pg/result_cache.hpp"
#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {
char* redis_url = nullptr;
int redis_timeout_ms = 50;
int redis_max_entry_size_kb = 1024;
char* redis_prefix = nullptr;
bool parameter_hooks = false;

// Refused values keep the old one; at startup one falls back to off, which is safe here (no
// Redis: each gateway caches alone).
bool check_redis_url(char** newval, void**, GucSource) {
    if (!*newval || !**newval) return true;
    std::string error;
    if (parse_redis_url(*newval, &error)) return true;
    GUC_check_errdetail("pg_rproxy.redis: %s.", error.c_str());
    return false;
}
}  // namespace

void define_redis_gucs() {
    DefineCustomStringVariable("pg_rproxy.redis",
                               "Redis shared by gateways as the second cache level: redis://[user:password@]host:port[/db] "
                               "or unix:///path/redis.sock.",
                               "Empty: off.", &redis_url, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, check_redis_url, nullptr,
                               nullptr);
    DefineCustomIntVariable("pg_rproxy.redis_timeout", "How long a statement waits for Redis before it goes on without it.",
                            nullptr, &redis_timeout_ms, 50, 1, 60000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.redis_max_entry_size", "Larger results are kept in shared memory only.", nullptr,
                            &redis_max_entry_size_kb, 1024, 1, 512 * 1024, PGC_SIGHUP, GUC_UNIT_KB, nullptr, nullptr,
                            nullptr);
    DefineCustomStringVariable("pg_rproxy.redis_prefix", "Prefix of every Redis key and of the invalidation channel.",
                               "Gateways sharing a cache must use the same one.", &redis_prefix, "pg_rproxy:",
                               PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("pg_rproxy.parameter_hooks",
                             "Take cache options (PGPROXY,NO_CACHE,CACHE_KEY:k,TTL:s) from a Bind's first parameter.",
                             nullptr, &parameter_hooks, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

void fill_redis_config(CacheConfig& c) {
    c.redis_url = redis_url ? redis_url : "";
    c.redis_timeout_ms = redis_timeout_ms;
    c.redis_max_entry_size = static_cast<std::size_t>(redis_max_entry_size_kb) * 1024;
    c.redis_prefix = redis_prefix ? redis_prefix : "pg_rproxy:";
    c.parameter_hooks = parameter_hooks;
    c.gateway_id = cache_gateway_id();
}

}  // namespace rproxy::pg
