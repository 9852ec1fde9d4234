// The SQL functions' side of the second cache level: pg_rproxy_cache_reset(),
// pg_rproxy_cache_invalidate() and pg_rproxy_cache_invalidate_key() run in an ordinary backend, not
// on a worker's loop, so they reach Redis with hiredis's blocking client (bounded by
// pg_rproxy.redis_timeout) and publish to every gateway. Redis away is a WARNING, never an error:
// this gateway's own entries are gone either way.
#pragma once

#include <string>

namespace rproxy::pg {

// Each returns "" when done, else what to say in a WARNING. Plain C++: no PostgreSQL call.
std::string redis_invalidate_all();
std::string redis_invalidate_relation(const std::string& relation);
std::string redis_invalidate_caller_key(const std::string& prefix);
// The WARNING, when there is one.
void warn_redis_unreached(const std::string& message);

}  // namespace rproxy::pg
