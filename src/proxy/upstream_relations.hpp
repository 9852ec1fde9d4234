// What a write to a relation reaches, as the upstream's catalog says, for the cache's invalidation
// on read-write upstreams: the relation itself, the views built on it, its partitions and the
// tables it is a partition of, and the tables its foreign keys cascade to. A relation with
// triggers or rules of its own may write anything ("unseen"). Asked once per name and search_path
// on the writing client's connection, and kept until a change of relation definitions commits
// anywhere (the schema counter of core/relation_generations) or for a minute (DDL made directly
// on the upstream).
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error_fields.hpp"
#include "proxy/server_connection.hpp"

namespace rproxy {

struct WriteReach {
    std::vector<std::string> relations;  // names without schema
    bool unseen = false;
};

class UpstreamRelations {
public:
    explicit UpstreamRelations(std::chrono::seconds ttl = std::chrono::seconds(60)) : ttl_(ttl) {}

    // nullptr while unknown; schema_generation: the schema counter's value now.
    const WriteReach* lookup(const std::string& name, const std::string& search_path, uint64_t schema_generation) const;
    // Asks the upstream about names on conn (whose search_path is the client's); schema_generation
    // as read before asking.
    boost::asio::awaitable<std::optional<ErrorFields>> resolve(ServerConnection& conn, const std::vector<std::string>& names,
                                                               const std::string& search_path, uint64_t schema_generation);
    void clear() { cache_.clear(); }

    // The catalog query, and a parsed name ("schema.name" or "name") quoted for to_regclass:
    // exposed for the tests.
    static const std::string& reach_sql();
    static std::string quote_relation_name(const std::string& name);

private:
    struct Entry {
        WriteReach reach;
        uint64_t schema_generation;
        std::chrono::steady_clock::time_point at;
    };
    static std::string key(const std::string& name, const std::string& search_path) { return name + '\0' + search_path; }
    std::unordered_map<std::string, Entry> cache_;
    std::chrono::seconds ttl_;
};

}  // namespace rproxy
