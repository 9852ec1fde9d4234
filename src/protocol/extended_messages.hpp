// Decoding of the extended-query frontend messages (Parse, Bind, Describe, Execute, Close) and the
// small backend messages that answer them. Every length and count is checked against the bytes
// actually received; violations are ProtocolError 08P01 as PostgreSQL reports them.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frontend_messages.hpp"

namespace rproxy::protocol {

struct ParseMessage {
    std::string name;
    std::string query;
    std::vector<uint32_t> param_types;
};

struct BindMessage {
    std::string portal;
    std::string statement;
    std::vector<int16_t> param_formats;
    std::vector<std::optional<std::string>> params;  // nullopt = NULL
    std::vector<int16_t> result_formats;
};

struct TargetMessage {  // Describe and Close
    char kind;          // 'S' statement or 'P' portal
    std::string name;
};

struct ExecuteMessage {
    std::string portal;
    int32_t max_rows;
};

ParseMessage decode_parse(std::string_view body);
// Whether a Parse message names exactly this statement, text and parameter types (a driver that
// sends the same unnamed Parse before every execution); decodes nothing into new memory. Throws
// ProtocolError as decode_parse would for a malformed body.
bool parse_repeats(std::string_view body, const std::string& name, const std::string& query,
                   const std::vector<uint32_t>& types);
BindMessage decode_bind(std::string_view body);
TargetMessage decode_target(std::string_view body, const char* what);
ExecuteMessage decode_execute(std::string_view body);

void append_parse_complete(std::string& out);
void append_bind_complete(std::string& out);
void append_close_complete(std::string& out);
void append_no_data(std::string& out);
void append_portal_suspended(std::string& out);
void append_parameter_description(std::string& out, const std::vector<uint32_t>& types);
// A statement's RowDescription body (columns in text format) as a portal's Describe answers it:
// the same columns with the result formats its Bind asked for (none = text, one = all, else each).
void append_row_description_for(std::string& out, std::string_view statement_rows, const std::vector<int16_t>& formats);

}  // namespace rproxy::protocol
