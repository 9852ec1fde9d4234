// Where a client goes: pg_rproxy_routes, first match wins, over the upstreams of
// pg_rproxy_upstreams, as the workers read them from the gateway's catalog (a snapshot kept until
// the tables change).
#pragma once
#include "core/pure_layer.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/upstream_definition.hpp"

namespace rproxy {

struct Route {
    int position = 0;
    std::optional<std::string> server_name;     // exact or *.domain; nullopt: any, with or without TLS
    std::optional<std::string> database;
    std::optional<std::string> role;            // a role, or +group
    std::optional<std::string> client_address;  // CIDR
    std::optional<int> listen_port;
    std::optional<std::string> upstream;        // nullopt: ask pg_rproxy.router
};

struct ServerCertificate {
    std::string server_name;  // exact or *.domain
    std::string cert_file;
    std::string key_file;
};

struct RoutingSnapshot {
    std::map<std::string, UpstreamDefinition> upstreams;
    std::vector<Route> routes;  // by position
    std::vector<ServerCertificate> certificates;
    std::string error;          // the tables could not be read: nobody is routed by them
    bool tables = false;        // the extension's tables exist (0.7.0)
};

struct RouteFacts {
    std::string server_name;  // SNI; empty without TLS or when the client sent none
    std::string database;
    std::string role;
    std::string client_address;
    int listen_port = 0;
};

// The first route that applies, or nullptr. is_member(group): the role is a member of group.
const Route* first_route(const std::vector<Route>& routes, const RouteFacts& facts,
                         const std::function<bool(const std::string&)>& is_member);

// pattern: a host name (case does not matter) or *.domain, where * stands for exactly one label,
// as in a certificate.
bool server_name_matches(const std::string& pattern, const std::string& name);

// The certificate for an SNI name: an exact entry first, then a wildcard one; nullptr if none.
const ServerCertificate* certificate_for(const std::vector<ServerCertificate>& certificates, const std::string& name);

// What the router function returned for a client.
struct RouterResult {
    std::optional<std::string> answer;  // nullopt: NULL (or the call failed)
    std::string error;                  // its error, or why it could not be called
};

// What a router function answered, classified: an upstream's name, a conninfo, or neither.
enum class RouterAnswerKind { Upstream, Conninfo, Garbage };
RouterAnswerKind classify_router_answer(const std::string& answer, const RoutingSnapshot& snapshot);

}  // namespace rproxy
