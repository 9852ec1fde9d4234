// Volatility of functions that are not gateway built-ins (user-defined or from extensions
// upstream), read from the upstream's own pg_proc over a pooled connection and cached by that
// upstream's pool for a bounded time; cleared when the configuration is reloaded.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error_fields.hpp"
#include "core/statement_facts.hpp"
#include "proxy/server_connection.hpp"

namespace rproxy {

class UpstreamFunctions {
public:
    explicit UpstreamFunctions(std::chrono::seconds ttl = std::chrono::seconds(300)) : ttl_(ttl) {}

    std::optional<Volatility> lookup(const FunctionRef& f) const;
    // Looks up the FunctionRef::key()s on the upstream; returns the upstream's error, if any.
    boost::asio::awaitable<std::optional<ErrorFields>> resolve(ServerConnection& conn,
                                                               const std::vector<std::string>& keys);
    void clear() { cache_.clear(); }

    // The text[] literal holding the names, and how rows (schema, name, provolatile) answer keys:
    // exposed for unit tests.
    static std::string array_literal(const std::vector<std::string>& names);
    static Volatility worst(Volatility a, Volatility b);

private:
    struct Entry {
        Volatility volatility;
        std::chrono::steady_clock::time_point at;
    };
    std::unordered_map<std::string, Entry> cache_;
    std::chrono::seconds ttl_;
};

}  // namespace rproxy
