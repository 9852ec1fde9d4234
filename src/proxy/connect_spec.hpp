// Turns the configured conninfo into the parameters of one connection attempt: parsed by libpq,
// with the gateway's additions (read-only sessions, application name) and host names resolved
// beforehand so that libpq never resolves inside the event loop.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include <chrono>

namespace rproxy {

// Keyword/value pairs for PQconnectStartParams, ready to use (host names already resolved).
struct ConnectSpec {
    std::vector<std::string> keywords;
    std::vector<std::string> values;
    std::chrono::milliseconds timeout{10000};
};

struct ConnectPlan {
    ConnectSpec spec;
    std::vector<std::string> hosts_to_resolve;  // indexes match the host list; "" = no lookup needed
    std::string error;                          // set when the conninfo is unusable
};

ConnectPlan plan_connection(const UpstreamConfig& cfg);

// Blocking (getaddrinfo): runs on the helper thread. Fills hostaddr; returns "" or the reason.
std::string resolve_hosts(ConnectPlan& plan);

}  // namespace rproxy
