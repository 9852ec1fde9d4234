#include "proxy/cache_key.hpp"

#include <libpq-fe.h>

#include <cctype>
#include <functional>
#include <map>

namespace rproxy {

namespace {

// libstdc++'s murmur-based byte hash: fixed seeds, so every worker process agrees.
uint64_t hash_bytes(const std::string& s, std::size_t seed) { return std::_Hash_bytes(s.data(), s.size(), seed); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

}  // namespace

std::string cache_key_prefix(const std::string& upstream_identity, const SessionSettings& settings) {
    std::string prefix;
    prefix.reserve(upstream_identity.size() + 64);
    prefix += "v1";
    prefix += '\0';
    prefix += upstream_identity;
    prefix += '\0';
    for (const char* name : kResultSettings) {
        if (const std::string* v = settings.get(name)) {
            prefix += name;
            prefix += '=';
            prefix += *v;
            prefix += '\0';
        }
    }
    prefix += '\0';
    return prefix;
}

CacheKey make_cache_key(const std::string& prefix, std::string_view normalized_sql, std::string_view extra) {
    CacheKey key;
    key.full.reserve(prefix.size() + normalized_sql.size() + extra.size());
    key.full += prefix;
    key.full += normalized_sql;
    key.full += extra;
    key.h1 = hash_bytes(key.full, 0x9E3779B97F4A7C15ull);
    key.h2 = hash_bytes(key.full, 0xC2B2AE3D27D4EB4Full);
    return key;
}

CacheKey make_cache_key(const std::string& upstream_identity, const SessionSettings& settings,
                        const std::string& normalized_sql) {
    return make_cache_key(cache_key_prefix(upstream_identity, settings), normalized_sql);
}

namespace {
// keyword -> value of a libpq conninfo (empty when it does not parse)
std::map<std::string, std::string> conninfo_values(const std::string& conninfo) {
    std::map<std::string, std::string> out;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (!opts) {
        if (err) PQfreemem(err);
        return out;
    }
    for (PQconninfoOption* o = opts; o->keyword; ++o)
        if (o->val) out[o->keyword] = o->val;
    PQconninfoFree(opts);
    return out;
}
}  // namespace

std::string upstream_identity(const std::string& conninfo) {
    auto values = conninfo_values(conninfo);
    std::string id;
    for (const char* k : {"host", "hostaddr", "port", "dbname", "user"}) id += std::string(k) + "=" + values[k] + ";";
    // Both change what a query returns: another service file entry, or settings such as a role
    // or search_path given in options.
    for (const char* k : {"options", "service"})
        if (!values[k].empty()) id += std::string(k) + "=" + values[k] + ";";
    return id;
}

std::string upstream_data_identity(const std::string& conninfo) {
    auto values = conninfo_values(conninfo);
    std::string id;
    for (const char* k : {"host", "hostaddr", "port", "dbname", "service"}) id += std::string(k) + "=" + values[k] + ";";
    return id;
}

std::string upstream_user(const std::string& conninfo) {
    std::string user = conninfo_values(conninfo)["user"];
    return user.empty() ? "(default)" : user;
}

CacheHints parse_cache_hints(std::string_view sql) {
    CacheHints h;
    for (;;) {
        sql = trim(sql);
        if (sql.substr(0, 2) != "/*") break;
        std::size_t end = sql.find("*/");
        if (end == std::string_view::npos) break;
        std::string_view body = trim(sql.substr(2, end - 2));
        sql.remove_prefix(end + 2);
        constexpr std::string_view kTag = "pg_rproxy:";
        if (body.substr(0, kTag.size()) != kTag) continue;
        body.remove_prefix(kTag.size());
        std::string token;
        auto apply = [&] {
            if (token == "no_cache") h.no_cache = true;
            if (token.rfind("ttl=", 0) == 0) {
                try {
                    int ttl = std::stoi(token.substr(4));
                    if (ttl > 0) h.ttl_seconds = ttl;
                } catch (...) {
                }
            }
            token.clear();
        };
        for (char c : body) {
            if (std::isspace(static_cast<unsigned char>(c)) || c == ',') apply();
            else token.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        }
        apply();
    }
    return h;
}

}  // namespace rproxy
