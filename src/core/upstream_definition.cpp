#include "core/upstream_definition.hpp"

namespace rproxy {

std::optional<Access> parse_access(const std::string& s) {
    if (s == "read_only") return Access::ReadOnly;
    if (s == "read_write") return Access::ReadWrite;
    return std::nullopt;
}

std::optional<Balance> parse_balance(const std::string& s) {
    if (s == "round_robin") return Balance::RoundRobin;
    if (s == "least_connections") return Balance::LeastConnections;
    if (s == "first") return Balance::First;
    return std::nullopt;
}

std::optional<PoolMode> parse_pool_mode(const std::string& s) {
    if (s == "transaction") return PoolMode::Transaction;
    if (s == "session") return PoolMode::Session;
    return std::nullopt;
}

const char* balance_name(Balance b) {
    switch (b) {
        case Balance::RoundRobin: return "round_robin";
        case Balance::LeastConnections: return "least_connections";
        case Balance::First: return "first";
    }
    return "round_robin";
}

}  // namespace rproxy
