#include "core/statement_hook.hpp"

#include "core/json_text.hpp"

namespace rproxy {

namespace {

void field(std::string& out, const char* name, std::string_view value, bool nullable = true) {
    if (out.size() > 1) out += ", ";
    out += '"';
    out += name;
    out += "\": ";
    if (value.empty() && nullable) out += "null";
    else append_json_string(out, value);
}

}  // namespace

std::string hook_context_json(const HookContext& c) {
    std::string out;
    out.reserve(160 + c.role.size() + c.database.size() + c.server_name.size() + c.upstream.size() +
                c.client_address.size() + c.application_name.size());
    out += '{';
    field(out, "role", c.role);
    field(out, "database", c.database);
    field(out, "server_name", c.server_name);
    field(out, "upstream", c.upstream);
    field(out, "client_address", c.client_address);
    field(out, "application_name", c.application_name, false);
    field(out, "protocol", c.protocol, false);
    out += '}';
    return out;
}

ErrorFields hook_refusal() {
    return ErrorFields::make("ERROR", "42501", "statement refused by pg_rproxy.statement_hook");
}

}  // namespace rproxy
