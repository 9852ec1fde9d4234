// The firewall's decision (layer 2 policy over the parser's layer-1 facts), pure C++.
#pragma once
#include "core/pure_layer.hpp"

#include <functional>
#include <optional>
#include <set>
#include <string>

#include "core/statement_facts.hpp"
#include "core/upstream_definition.hpp"
#include "core/verdict.hpp"

namespace rproxy {

struct FirewallConfig {
    std::set<std::string> allowed_functions;  // volatile built-ins (or upstream functions) let through by name
    std::set<std::string> denied_functions;   // rejected whatever their volatility
    std::set<std::string> denied_settings;    // in addition to the ones that can never change
    bool allow_unknown_functions = false;     // pg_rproxy.unknown_functions = 'allow'
};

// Splits a GUC list value ("a, b,c") into lower-case names; "schema.name" entries are kept whole.
std::set<std::string> parse_name_list(const std::string& value);

// The upstream's answer for a function that is not a gateway built-in, or nullopt while unknown.
using UpstreamVolatility = std::function<std::optional<Volatility>(const FunctionRef&)>;

// With lookup == nullptr (no upstream to ask), a non-built-in function counts as unknown.
// On a read-write upstream everything passes but denied functions and settings and role changes;
// the verdict then says what the statements write.
Verdict evaluate(const ParsedQuery& parsed, const FirewallConfig& cfg, const UpstreamVolatility& lookup,
                 Access access = Access::ReadOnly);

// Settings no client may change through the proxy, whatever the configuration.
bool setting_always_denied(const std::string& lower_name, Access access = Access::ReadOnly);

}  // namespace rproxy
