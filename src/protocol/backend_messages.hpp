// Builders for the backend messages the gateway itself originates.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error_fields.hpp"

namespace rproxy::protocol {

void append_authentication_ok(std::string& out);
void append_parameter_status(std::string& out, std::string_view name, std::string_view value);
void append_backend_key_data(std::string& out, int32_t pid, int32_t key);
void append_ready_for_query(std::string& out, char status);
void append_command_complete(std::string& out, std::string_view tag);
void append_empty_query_response(std::string& out);
void append_notification(std::string& out, int32_t pid, std::string_view channel, std::string_view payload);
// 'E' ErrorResponse, or 'N' NoticeResponse when notice is true.
void append_error(std::string& out, const ErrorFields& fields, bool notice = false);

}  // namespace rproxy::protocol
