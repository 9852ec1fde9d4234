// Builders of the messages a client sends, for the proxy's upstream side: its own statements, and
// clients' extended-protocol messages re-addressed to the proxy's statement and portal names.
// Lists longer than the protocol's 16-bit counts throw std::length_error.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rproxy::protocol {

// Startup-family packets (no type byte).
void append_startup_message(std::string& out, const std::vector<std::pair<std::string, std::string>>& params);
void append_cancel_request(std::string& out, int32_t pid, int32_t key);
void append_ssl_request(std::string& out);

void append_query(std::string& out, std::string_view sql);
void append_parse(std::string& out, std::string_view name, std::string_view sql, const std::vector<uint32_t>& types);
// params: nullopt is NULL. Formats as in the protocol: none = all text, one = all, else per item.
void append_bind(std::string& out, std::string_view portal, std::string_view statement,
                 const std::vector<int16_t>& param_formats, const std::vector<std::optional<std::string_view>>& params,
                 const std::vector<int16_t>& result_formats);
// A client's Bind (body as received, already checked by decode_bind) addressed to another
// statement: the rest of it is copied as it is.
void append_bind_to(std::string& out, std::string_view bind_body, std::string_view statement);
void append_describe(std::string& out, char kind, std::string_view name);  // kind 'S' or 'P'
void append_execute(std::string& out, std::string_view portal, int32_t max_rows);
void append_close(std::string& out, char kind, std::string_view name);
void append_sync(std::string& out);
void append_flush(std::string& out);
void append_terminate(std::string& out);

void append_copy_data(std::string& out, std::string_view data);
void append_copy_done(std::string& out);
void append_copy_fail(std::string& out, std::string_view reason);

void append_function_call(std::string& out, uint32_t function_oid, const std::vector<int16_t>& arg_formats,
                          const std::vector<std::optional<std::string_view>>& args, int16_t result_format);

// The password-message family ('p').
void append_password_message(std::string& out, std::string_view password);
void append_sasl_initial_response(std::string& out, std::string_view mechanism, std::optional<std::string_view> data);
void append_sasl_response(std::string& out, std::string_view data);

}  // namespace rproxy::protocol
