#include "proxy/route_resolver.hpp"

#include "proxy/cache_key.hpp"
#include "proxy/connect_spec.hpp"

namespace rproxy {

void RouteResolver::configure(const RoutingConfig& cfg) {
    cfg_ = cfg;
    answers_.clear();
}

ErrorFields RouteResolver::no_route(const RouteFacts& facts) {
    std::string name = facts.server_name.empty() ? "no server name" : "server name \"" + facts.server_name + "\"";
    ErrorFields e = ErrorFields::make("FATAL", "28000", "no pg_rproxy route for " + name + ", database \"" +
                                                             facts.database + "\", role \"" + facts.role + "\"");
    e.add('H', "Add a row to pg_rproxy_routes, or set pg_rproxy.router or pg_rproxy.upstream.");
    return e;
}

RouteDecision RouteResolver::to_upstream(const RoutingSnapshot& snap, const std::string& name, const RouteFacts& facts,
                                         const AuthSnapshot& auth) {
    auto it = snap.upstreams.find(name);
    if (it == snap.upstreams.end()) {
        // Never echo what may be a conninfo, and its password, back to a client.
        std::string shown = name.find('=') == std::string::npos && name.size() <= 64 ? "\"" + name + "\"" : "(not shown)";
        return {nullptr, ErrorFields::make("FATAL", "28000", "pg_rproxy upstream " + shown + " does not exist")};
    }
    UpstreamPtr u = upstreams_.find(it->second, facts.database, facts.role, auth.mapping);
    if (!u) return {nullptr, ErrorFields::make("FATAL", "53300", "too many distinct upstreams in this worker")};
    return {u, std::nullopt};
}

RouteDecision RouteResolver::ask_router(const RoutingSnapshot& snap, const RouteFacts& facts, const AuthSnapshot& auth) {
    std::string key = facts.server_name + '\0' + facts.database + '\0' + facts.role + '\0' + facts.client_address;
    auto now = std::chrono::steady_clock::now();
    std::optional<std::string> answer;
    auto known = answers_.find(key);
    if (known != answers_.end() && now - known->second.at < cfg_.router_cache_ttl) {
        answer = known->second.answer;
    } else {
        RouterResult r = host_.call_router(cfg_.router, facts);
        if (!r.error.empty()) {
            // Its own words: the function's author wrote them for the client.
            ErrorFields e = ErrorFields::make("FATAL", "28000", r.error);
            e.add('D', "pg_rproxy.router (" + cfg_.router + ") failed.");
            host_.log(LogLevel::Warning, "pg_rproxy: router " + cfg_.router + " failed: " + r.error);
            return {nullptr, e};
        }
        answer = r.answer;
        if (cfg_.router_cache_ttl.count() > 0) {
            if (answers_.size() >= kMaxAnswers) answers_.clear();
            answers_[key] = Answer{answer, now};
        }
    }
    if (!answer) return {nullptr, no_route(facts)};
    switch (classify_router_answer(*answer, snap)) {
        case RouterAnswerKind::Upstream:
            return to_upstream(snap, *answer, facts, auth);
        case RouterAnswerKind::Conninfo: {
            std::string problem = conninfo_problem(*answer);
            if (problem.empty() && conninfo_repeats_keywords(*answer))
                problem = "it sets a keyword twice (build it without the client's values: dbname and user left out "
                          "are the client's)";
            if (problem.empty()) {
                UpstreamDefinition def;
                // Shown in the views: where it goes, never its password.
                def.name = "router: " + upstream_identity(*answer);
                def.conninfo = *answer;
                UpstreamPtr u = upstreams_.find(def, facts.database, facts.role, auth.mapping);
                if (!u) return {nullptr, ErrorFields::make("FATAL", "53300", "too many distinct upstreams in this worker")};
                return {u, std::nullopt};
            }
            // libpq's reason may quote a piece of the string, a password perhaps: the log gets
            // the kind of fault only.
            host_.log(LogLevel::Warning, "pg_rproxy: router " + cfg_.router + " returned an unusable conninfo" +
                                             (problem.rfind("it sets", 0) == 0 ? ": " + problem : std::string()));
            return {nullptr, ErrorFields::make("FATAL", "28000", "pg_rproxy.router returned an invalid conninfo")};
        }
        case RouterAnswerKind::Garbage:
            break;
    }
    // Never echo the whole answer: a conninfo gone wrong may hold a password.
    std::string shown = answer->size() > 64 ? answer->substr(0, 64) + "..." : *answer;
    if (answer->find("password") != std::string::npos) shown = "(not shown)";
    ErrorFields e = ErrorFields::make("FATAL", "28000", "pg_rproxy.router returned \"" + shown +
                                                             "\", which is neither an upstream nor a conninfo");
    return {nullptr, e};
}

bool RouteResolver::passthrough_possible() {
    std::shared_ptr<const RoutingSnapshot> snap = host_.routing_snapshot();
    for (const auto& [name, def] : snap->upstreams)
        if (def.auth == UpstreamAuth::Passthrough) return true;
    return false;
}

RouteDecision RouteResolver::resolve(const RouteFacts& facts, const std::string& rule_upstream, const AuthSnapshot& auth) {
    std::shared_ptr<const RoutingSnapshot> snap = host_.routing_snapshot();
    if (!snap->error.empty()) {
        host_.log(LogLevel::Warning, "pg_rproxy: routing tables unreadable, refusing clients: " + snap->error);
        return {nullptr, ErrorFields::make("FATAL", "28000", "pg_rproxy routing tables are unusable; see the gateway log")};
    }
    if (snap != seen_snapshot_) {
        seen_snapshot_ = snap;
        if (snap->tables) upstreams_.retire_missing(snap->upstreams);
    }
    if (!rule_upstream.empty()) {
        if (!snap->tables) {
            // The library is 0.7.0, the catalog not yet (ALTER EXTENSION UPDATE to come): the
            // rule still holds a conninfo, as 0.6.0 read it.
            UpstreamDefinition def;
            def.name = "rule: " + upstream_identity(rule_upstream);
            def.conninfo = rule_upstream;
            UpstreamPtr u = upstreams_.find(def, facts.database, facts.role, auth.mapping);
            if (!u) return {nullptr, ErrorFields::make("FATAL", "53300", "too many distinct upstreams in this worker")};
            return {u, std::nullopt};
        }
        return to_upstream(*snap, rule_upstream, facts, auth);
    }
    auto is_member = [&auth](const std::string& g) { return auth.member_of.count(g) > 0; };
    if (const Route* r = first_route(snap->routes, facts, is_member)) {
        if (r->upstream) return to_upstream(*snap, *r->upstream, facts, auth);
        if (cfg_.router.empty()) {
            ErrorFields e = no_route(facts);
            e.add('D', "Route " + std::to_string(r->position) + " names no upstream and pg_rproxy.router is not set.");
            return {nullptr, e};
        }
        return ask_router(*snap, facts, auth);
    }
    if (!cfg_.router.empty()) return ask_router(*snap, facts, auth);
    if (upstreams_.default_configured()) return {upstreams_.find_default(auth.mapping), std::nullopt};
    ErrorFields e = no_route(facts);
    e.add('D', "pg_rproxy.upstream is not set, and no route or router decides.");
    return {nullptr, e};
}

}  // namespace rproxy
