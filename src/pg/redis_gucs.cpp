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
char* redis_password_file = nullptr;
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
// An empty prefix would make a reset delete every key of the Redis database; one without a final
// ':' would reach into the keys of a longer prefix ("app" into "app2:").
bool check_redis_prefix(char** newval, void**, GucSource) {
    size_t n = *newval ? strlen(*newval) : 0;
    if (n > 0 && (*newval)[n - 1] == ':') return true;
    GUC_check_errdetail("pg_rproxy.redis_prefix must end with ':', as in 'pg_rproxy:'.");
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
    // The password apart from the URL: the server logs a changed setting's value, never a file's text.
    DefineCustomStringVariable("pg_rproxy.redis_password_file", "File holding the Redis password (its first line).",
                               "Relative to the data directory. Overrides a password in pg_rproxy.redis.",
                               &redis_password_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.redis_prefix", "Prefix of every Redis key and of the invalidation channel.",
                               "Gateways sharing a cache must use the same one.", &redis_prefix, "pg_rproxy:",
                               PGC_SIGHUP, 0, check_redis_prefix, nullptr, nullptr);
    DefineCustomBoolVariable("pg_rproxy.parameter_hooks",
                             "Take cache options (PGPROXY,NO_CACHE,CACHE_KEY:k,TTL:s) from a Bind's first parameter.",
                             nullptr, &parameter_hooks, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

void fill_redis_config(CacheConfig& c) {
    c.redis_url = redis_url ? redis_url : "";
    c.redis_password.clear();
    if (redis_password_file && *redis_password_file) {
        // Read at startup and reload only (a small local file). Unreadable: the URL's password,
        // and Redis refuses the connection, which the log reports.
        if (FILE* f = AllocateFile(redis_password_file, "r")) {
            char line[1024];
            if (fgets(line, sizeof line, f)) {
                size_t n = strcspn(line, "\r\n");
                c.redis_password.assign(line, n);
            }
            FreeFile(f);
        }
    }
    c.redis_timeout_ms = redis_timeout_ms;
    c.redis_max_entry_size = static_cast<std::size_t>(redis_max_entry_size_kb) * 1024;
    c.redis_prefix = redis_prefix ? redis_prefix : "pg_rproxy:";
    c.parameter_hooks = parameter_hooks;
    c.gateway_id = cache_gateway_id();
}

}  // namespace rproxy::pg
