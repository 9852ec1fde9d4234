#include "proxy/upstream_relations.hpp"

#include "core/relation_generations.hpp"
#include "proxy/upstream_functions.hpp"

namespace rproxy {

// One row per relation a write to $1's names reaches: (name as given, relname, has triggers or
// rules). A view written is its base tables (an updatable view writes them); from there, the views
// on them, partitions both ways, and cascading foreign keys, to any depth.
const std::string& UpstreamRelations::reach_sql() {
    static const std::string sql =
        "WITH RECURSIVE named AS ("
        " SELECT n, pg_catalog.to_regclass(n) AS rel FROM pg_catalog.unnest($1::pg_catalog.text[]) AS n),"
        " base(n, rel) AS ("
        " SELECT n, rel FROM named WHERE rel IS NOT NULL"
        " UNION"
        " SELECT b.n, d.refobjid FROM base b"
        "  JOIN pg_catalog.pg_rewrite w ON w.ev_class = b.rel"
        "  JOIN pg_catalog.pg_depend d ON d.objid = w.oid"
        "  AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
        "  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> b.rel),"
        " reach(n, rel) AS ("
        " SELECT n, rel FROM base"
        " UNION"
        " SELECT r.n, e.other FROM reach r, LATERAL ("
        "  SELECT i.inhparent AS other FROM pg_catalog.pg_inherits i WHERE i.inhrelid = r.rel"
        "  UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = r.rel"
        "  UNION ALL SELECT c.conrelid FROM pg_catalog.pg_constraint c"
        "   WHERE c.contype = 'f' AND c.confrelid = r.rel"
        "   AND (c.confdeltype IN ('c', 'n', 'd') OR c.confupdtype IN ('c', 'n', 'd'))"
        "  UNION ALL SELECT w.ev_class FROM pg_catalog.pg_depend d"
        "   JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid"
        "   WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
        "   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
        "   AND d.refobjid = r.rel AND w.ev_class <> r.rel) e)"
        " SELECT r.n, c.relname,"
        " EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = r.rel AND NOT t.tgisinternal)"
        " OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class = r.rel AND w.rulename <> '_RETURN')"
        " FROM reach r JOIN pg_catalog.pg_class c ON c.oid = r.rel";
    return sql;
}

std::string UpstreamRelations::quote_relation_name(const std::string& name) {
    auto quote = [](std::string_view part) {
        std::string out = "\"";
        for (char c : part) {
            if (c == '"') out += '"';
            out += c;
        }
        return out + "\"";
    };
    // "schema.name": the parser joined them with the first dot; a dot in a quoted name stays.
    std::size_t dot = name.find('.');
    if (dot == std::string::npos) return quote(name);
    return quote(std::string_view(name).substr(0, dot)) + "." + quote(std::string_view(name).substr(dot + 1));
}

const WriteReach* UpstreamRelations::lookup(const std::string& name, const std::string& search_path,
                                            uint64_t schema_generation) const {
    auto it = cache_.find(key(name, search_path));
    if (it == cache_.end() || it->second.schema_generation != schema_generation ||
        std::chrono::steady_clock::now() - it->second.at > ttl_)
        return nullptr;
    return &it->second.reach;
}

boost::asio::awaitable<std::optional<ErrorFields>> UpstreamRelations::resolve(ServerConnection& conn,
                                                                             const std::vector<std::string>& names,
                                                                             const std::string& search_path,
                                                                             uint64_t schema_generation) {
    // The parser's names are as the server would take them (case folded, quotes gone): quoted
    // again for to_regclass.
    std::vector<std::string> quoted;
    std::unordered_map<std::string, std::string> name_of;
    for (const auto& n : names) {
        std::string q = quote_relation_name(n);
        name_of.emplace(q, n);
        quoted.push_back(std::move(q));
    }
    std::vector<std::string> params{UpstreamFunctions::array_literal(quoted)};
    auto result = co_await conn.run_internal(reach_sql(), params);
    if (result.error) co_return result.error;
    auto now = std::chrono::steady_clock::now();
    std::unordered_map<std::string, Entry> found;
    // A name the upstream does not know (a table still to be created): its own name only.
    for (const auto& n : names) {
        Entry e{WriteReach{{std::string(relation_base_name(n))}, false}, schema_generation, now};
        found.emplace(n, std::move(e));
    }
    for (const auto& row : result.rows) {
        if (row.size() < 3 || !row[0] || !row[1] || !row[2]) continue;
        auto named = name_of.find(*row[0]);
        if (named == name_of.end()) continue;
        auto it = found.find(named->second);
        if (it == found.end()) continue;
        it->second.reach.relations.push_back(*row[1]);
        if (*row[2] == "t") it->second.reach.unseen = true;
    }
    for (auto& [name, e] : found) cache_[key(name, search_path)] = std::move(e);
    co_return std::nullopt;
}

}  // namespace rproxy
