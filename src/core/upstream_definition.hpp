// One row of pg_rproxy_upstreams, as the workers use it: where its servers are and how clients
// are spread over them. pg_rproxy.upstream is the unnamed one, with the defaults.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>

namespace rproxy {

enum class Access { ReadOnly, ReadWrite };
enum class Balance { RoundRobin, LeastConnections, First };
enum class PoolMode { Transaction, Session };
// gateway: clients log in to the gateway; passthrough: the client's login is relayed upstream.
enum class UpstreamAuth { Gateway, Passthrough };

struct UpstreamDefinition {
    std::string name;      // "" = pg_rproxy.upstream
    std::string conninfo;  // a host list names several servers
    Access access = Access::ReadOnly;
    Balance balance = Balance::RoundRobin;
    PoolMode pool_mode = PoolMode::Transaction;
    int pool_size = 0;  // per worker and server; 0 = pg_rproxy.pool_size
    UpstreamAuth auth = UpstreamAuth::Gateway;

    bool operator==(const UpstreamDefinition&) const = default;
};

// The table's spellings; nullopt for anything else (the table's CHECK constraints refuse it).
std::optional<Access> parse_access(const std::string& s);
std::optional<Balance> parse_balance(const std::string& s);
std::optional<PoolMode> parse_pool_mode(const std::string& s);
const char* balance_name(Balance b);

}  // namespace rproxy
