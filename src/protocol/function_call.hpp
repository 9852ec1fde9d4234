// The fast-path FunctionCall message ('F') clients send, and the FunctionCallResponse ('V') that
// answers it. libpq's large-object functions (pg_dump, psql's \lo_export) use them.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rproxy::protocol {

struct FunctionCallMessage {
    uint32_t function_oid = 0;
    std::vector<int16_t> arg_formats;  // none = all text, one = all, else one per argument
    std::vector<std::optional<std::string>> args;  // nullopt = NULL
    int16_t result_format = 0;
};
FunctionCallMessage decode_function_call(std::string_view body);

void append_function_call_response(std::string& out, std::optional<std::string_view> value);

}  // namespace rproxy::protocol
