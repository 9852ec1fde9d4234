// The authentication exchange on the wire: Authentication* requests the proxy sends, and the
// password-family ('p') messages clients answer with, decoded without trusting any length.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rproxy::protocol {

void append_auth_cleartext_request(std::string& out);
void append_auth_md5_request(std::string& out, std::string_view salt4);
void append_auth_sasl(std::string& out, const std::vector<std::string>& mechanisms);
void append_auth_sasl_continue(std::string& out, std::string_view data);
void append_auth_sasl_final(std::string& out, std::string_view data);

// PasswordMessage: one NUL-terminated string (cleartext password or md5 response).
std::string_view decode_password_message(std::string_view body);

struct SaslInitialResponse {
    std::string_view mechanism;
    std::string_view data;
};
// SASLInitialResponse: mechanism name, then an Int32 length (-1: no data) and that many bytes.
SaslInitialResponse decode_sasl_initial_response(std::string_view body);

}  // namespace rproxy::protocol
