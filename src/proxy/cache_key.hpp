// What identifies a cached result, and the per-statement hints. Everything that can change the
// bytes a client receives is in the key: the upstream (host, port, database, role), the session
// settings that change results or their text, and the normalised statement.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>
#include <string_view>

#include "core/cache_types.hpp"
#include "proxy/session_settings.hpp"

namespace rproxy {

// Settings whose values change query results or their text form.
constexpr const char* kResultSettings[] = {
    "search_path", "timezone", "datestyle", "intervalstyle", "extra_float_digits", "bytea_output",
    "client_encoding", "standard_conforming_strings", "lc_monetary", "lc_numeric", "lc_time", "role",
};

CacheKey make_cache_key(const std::string& upstream_identity, const SessionSettings& settings,
                        const std::string& normalized_sql);
// The same in two steps: the part from the upstream and the settings changes rarely, so a session
// keeps it (ClientSession::cache_key_for) and a cache hit does no settings lookups.
std::string cache_key_prefix(const std::string& upstream_identity, const SessionSettings& settings);
CacheKey make_cache_key(const std::string& prefix, std::string_view normalized_sql,
                        std::string_view extra = {});

// "host=..;port=..;dbname=..;user=.." of a libpq conninfo, with options and service when set
// ("" when it does not parse). The password is left out: it changes nothing a query returns.
std::string upstream_identity(const std::string& conninfo);
// The same without user and options: the data behind it, whoever reads it.
std::string upstream_data_identity(const std::string& conninfo);
// The role the upstream connections log in as (libpq's default, the OS user, when unset).
std::string upstream_user(const std::string& conninfo);

struct CacheHints {
    bool no_cache = false;
    std::optional<int> ttl_seconds;
};
// Leading block comments of the form /* pg_rproxy: ttl=60 */ or /* pg_rproxy: no_cache */.
CacheHints parse_cache_hints(std::string_view sql);

}  // namespace rproxy
