// pg_rproxy.statement_hook: a SQL function (statement text, context jsonb) RETURNS text, asked
// about every statement after the rewrite rules and before the firewall. What it is told, and
// what its answer means for the client.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>
#include <string_view>

#include "core/error_fields.hpp"

namespace rproxy {

// The context argument's fields. An empty one is JSON null (no TLS server name, the default
// upstream), except application_name and protocol, which are always strings.
struct HookContext {
    std::string_view role;
    std::string_view database;
    std::string_view server_name;
    std::string_view upstream;
    std::string_view client_address;
    std::string_view application_name;
    std::string_view protocol;  // "simple" or "extended"
};

std::string hook_context_json(const HookContext& c);

struct HookAnswer {
    std::optional<std::string> statement;  // the text that runs; none (and no error): refused
    std::optional<ErrorFields> error;      // the hook raised (its own SQLSTATE and message), or could not be called
};

// The client's error when the hook returned NULL.
ErrorFields hook_refusal();

}  // namespace rproxy
