#include "pg/routing_catalog.hpp"

#include <cstdlib>

#include "pg/catalog_query.hpp"

namespace rproxy::pg {

namespace {

std::optional<std::string> opt(const CatalogRow& row, std::size_t i) { return i < row.size() ? row[i] : std::nullopt; }
std::string text(const CatalogRow& row, std::size_t i) { return opt(row, i).value_or(""); }

}  // namespace

RoutingSnapshot read_routing_snapshot() {
    RoutingSnapshot snap;
    CatalogResult where = run_catalog_queries({{"SELECT quote_ident(n.nspname) FROM pg_extension e "
                                                "JOIN pg_namespace n ON n.oid = e.extnamespace "
                                                "WHERE e.extname = 'pg_rproxy' AND to_regclass(quote_ident(n.nspname) "
                                                "|| '.pg_rproxy_routes') IS NOT NULL",
                                                {}}});
    if (!where.error.empty()) {
        snap.error = where.error;
        return snap;
    }
    if (where.results[0].empty()) return snap;  // not installed, or before 0.7.0: no tables, no routes
    std::string schema = text(where.results[0][0], 0);
    CatalogResult r = run_catalog_queries({
        {"SELECT name, conninfo, access, balance, pool_mode, pool_size, pg_catalog.to_jsonb(u) ->> 'auth' FROM " + schema +
             ".pg_rproxy_upstreams u", {}},
        {"SELECT position, server_name, database, role, client_address, listen_port, upstream FROM " + schema +
             ".pg_rproxy_routes ORDER BY position",
         {}},
        {"SELECT server_name, cert_file, key_file FROM " + schema + ".pg_rproxy_server_certificates", {}},
    });
    if (!r.error.empty()) {
        snap.error = r.error;
        return snap;
    }
    snap.tables = true;
    for (const auto& row : r.results[0]) {
        UpstreamDefinition d;
        d.name = text(row, 0);
        d.conninfo = text(row, 1);
        d.access = parse_access(text(row, 2)).value_or(Access::ReadOnly);
        d.balance = parse_balance(text(row, 3)).value_or(Balance::RoundRobin);
        d.pool_mode = parse_pool_mode(text(row, 4)).value_or(PoolMode::Transaction);
        d.pool_size = opt(row, 5) ? std::atoi(opt(row, 5)->c_str()) : 0;
        // The column came with 0.8.0: before ALTER EXTENSION UPDATE every upstream is 'gateway'.
        d.auth = opt(row, 6) && *opt(row, 6) == "passthrough" ? UpstreamAuth::Passthrough : UpstreamAuth::Gateway;
        snap.upstreams.emplace(d.name, std::move(d));
    }
    for (const auto& row : r.results[1]) {
        Route route;
        route.position = std::atoi(text(row, 0).c_str());
        route.server_name = opt(row, 1);
        route.database = opt(row, 2);
        route.role = opt(row, 3);
        route.client_address = opt(row, 4);
        if (auto port = opt(row, 5)) route.listen_port = std::atoi(port->c_str());
        route.upstream = opt(row, 6);
        snap.routes.push_back(std::move(route));
    }
    for (const auto& row : r.results[2]) snap.certificates.push_back({text(row, 0), text(row, 1), text(row, 2)});
    return snap;
}

RouterResult call_router(const std::string& function, const RouteFacts& facts) {
    RouterResult call;
    // Quoted once per setting: the quoting allocates in the worker's long-lived context.
    static std::string last_function;
    static std::optional<std::string> last_quoted;
    if (function != last_function || !last_quoted) {
        last_function = function;
        last_quoted = quoted_qualified_name(function);
    }
    const std::optional<std::string>& name = last_quoted;
    if (!name) {
        call.error = "pg_rproxy.router \"" + function + "\" is not a function name";
        return call;
    }
    CatalogQuery q{"SELECT " + *name + "($1::text, $2::text, $3::text, $4::inet)::text",
                   {facts.server_name.empty() ? std::nullopt : std::optional<std::string>(facts.server_name),
                    facts.database, facts.role,
                    facts.client_address.empty() ? std::nullopt : std::optional<std::string>(facts.client_address)},
                   false};
    CatalogResult r = run_catalog_queries({q});
    if (!r.error.empty()) {
        call.error = r.error;
        return call;
    }
    if (!r.results[0].empty()) call.answer = opt(r.results[0][0], 0);
    return call;
}

}  // namespace rproxy::pg
