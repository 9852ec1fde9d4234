// Turns the configured conninfo into the parameters of one connection attempt: parsed by libpq,
// with the gateway's additions (read-only sessions, application name) and host names resolved
// beforehand so that libpq never resolves inside the event loop.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <utility>
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

// The keyword/value pairs of a conninfo string or URI, as set; nullopt (and *error) when libpq
// cannot parse it.
using ConninfoPairs = std::vector<std::pair<std::string, std::string>>;
std::optional<ConninfoPairs> parse_conninfo(const std::string& conninfo, std::string* error);
// keyword='value' ..., which later keywords may extend or override (a URI cannot be extended).
std::string format_conninfo(const ConninfoPairs& pairs);
const std::string* conninfo_value(const ConninfoPairs& pairs, const std::string& keyword);
void set_conninfo_value(ConninfoPairs& pairs, const std::string& keyword, const std::string& value);

// One server of an upstream: a host of its host list, with a conninfo naming that host alone.
struct ServerTarget {
    std::string host;  // as written (a name, an address or a socket directory)
    std::string port;
    ConninfoPairs conninfo;
};
// Every server the conninfo's host list names (one when it names one host or none); empty, with
// *error, when its host, hostaddr and port lists do not match up.
std::vector<ServerTarget> split_servers(const ConninfoPairs& conninfo, std::string* error);
// Why a conninfo cannot be used as an upstream, or "" (what pg_rproxy_upstreams checks on write).
std::string conninfo_problem(const std::string& conninfo);
// Whether a keyword is given twice (libpq keeps the last one): in a router's answer that is what
// a client's database name spliced into it would do ("x host=... user=postgres").
bool conninfo_repeats_keywords(const std::string& conninfo);

// Blocking (getaddrinfo): runs on the helper thread. Fills hostaddr; returns "" or the reason.
std::string resolve_hosts(ConnectPlan& plan);

}  // namespace rproxy
