// Chooses a client's upstream at login. In order: the upstream its authentication rule names; the
// first matching route of pg_rproxy_routes; pg_rproxy.router's function, when no route matched or
// the matching one names no upstream; pg_rproxy.upstream. Nothing left: 28000.
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "auth/auth_snapshot.hpp"
#include "core/config.hpp"
#include "core/error_fields.hpp"
#include "core/routing.hpp"
#include "proxy/upstream_registry.hpp"
#include "proxy/worker_host.hpp"

namespace rproxy {

struct RouteDecision {
    UpstreamPtr upstream;               // null: refused, for error's reason
    std::optional<ErrorFields> error;
};

class RouteResolver {
public:
    RouteResolver(WorkerHost& host, UpstreamRegistry& upstreams) : host_(host), upstreams_(upstreams) {}

    void configure(const RoutingConfig& cfg);  // a reload: router answers are asked again
    const RoutingConfig& config() const { return cfg_; }

    // rule_upstream: the upstream the client's authentication rule names ("" = none).
    RouteDecision resolve(const RouteFacts& facts, const std::string& rule_upstream, const AuthSnapshot& auth);
    // Whether any upstream row has auth 'passthrough' (clients are then routed before they
    // authenticate, see ClientSession::authenticate).
    bool passthrough_possible();

private:
    RouteDecision to_upstream(const RoutingSnapshot& snap, const std::string& name, const RouteFacts& facts,
                              const AuthSnapshot& auth);
    RouteDecision ask_router(const RoutingSnapshot& snap, const RouteFacts& facts, const AuthSnapshot& auth);
    static ErrorFields no_route(const RouteFacts& facts);

    WorkerHost& host_;
    UpstreamRegistry& upstreams_;
    RoutingConfig cfg_;
    std::shared_ptr<const RoutingSnapshot> seen_snapshot_;  // the rows the registry was last pruned by
    struct Answer {
        std::optional<std::string> answer;
        std::chrono::steady_clock::time_point at;
    };
    std::map<std::string, Answer> answers_;  // by server name, database, role and address
    static constexpr std::size_t kMaxAnswers = 10000;
};

}  // namespace rproxy
