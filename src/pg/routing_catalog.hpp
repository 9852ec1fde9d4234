// What routing reads from the gateway: pg_rproxy_upstreams, pg_rproxy_routes and
// pg_rproxy_server_certificates (read again only after they change), and the router function.
#pragma once

#include <optional>
#include <string>

#include "core/routing.hpp"

namespace rproxy::pg {

RoutingSnapshot read_routing_snapshot();

// Calls pg_rproxy.router's function (server_name, database, role, client_address) in a
// transaction of its own.
RouterResult call_router(const std::string& function, const RouteFacts& facts);

}  // namespace rproxy::pg
