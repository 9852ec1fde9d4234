// pg_rproxy.parameter_hooks: per-execution cache options in the first parameter of a Bind, as the
// Go Bind-level cache our users come from takes them. "PGPROXY,NO_CACHE,TTL:60,CACHE_KEY:tenant1"
// The parameter still reaches the upstream unchanged; queries use it as a no-op condition.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace rproxy {

struct ParameterHook {
    bool no_cache = false;
    std::optional<int> ttl_seconds;
    std::string caller_key;  // names the entry for pg_rproxy_cache_invalidate_key()
    int unknown_options = 0;  // well-formed options this version does not know: ignored, counted
};

// nullopt: not a hook, or a malformed one (an ordinary parameter then): an empty option, a TTL
// that is not a whole number of seconds, an empty CACHE_KEY, or one given twice.
std::optional<ParameterHook> parse_parameter_hook(std::string_view value);

}  // namespace rproxy
