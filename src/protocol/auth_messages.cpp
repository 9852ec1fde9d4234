#include "protocol/auth_messages.hpp"

#include "protocol/frontend_messages.hpp"
#include "protocol/message_writer.hpp"
#include "protocol/wire_reader.hpp"

namespace rproxy::protocol {

namespace {
constexpr int32_t kAuthCleartext = 3, kAuthMd5 = 5, kAuthSasl = 10, kAuthSaslContinue = 11, kAuthSaslFinal = 12;

[[noreturn]] void invalid(const char* what) { throw ProtocolError("08P01", std::string("invalid ") + what); }
}  // namespace

void append_auth_cleartext_request(std::string& out) { MessageWriter(out, 'R').int32(kAuthCleartext); }

void append_auth_md5_request(std::string& out, std::string_view salt4) {
    MessageWriter(out, 'R').int32(kAuthMd5).bytes(salt4.data(), salt4.size());
}

void append_auth_sasl(std::string& out, const std::vector<std::string>& mechanisms) {
    MessageWriter w(out, 'R');
    w.int32(kAuthSasl);
    for (const auto& m : mechanisms) w.cstr(m);
    w.bytes("", 1);
}

void append_auth_sasl_continue(std::string& out, std::string_view data) {
    MessageWriter(out, 'R').int32(kAuthSaslContinue).bytes(data.data(), data.size());
}

void append_auth_sasl_final(std::string& out, std::string_view data) {
    MessageWriter(out, 'R').int32(kAuthSaslFinal).bytes(data.data(), data.size());
}

std::string_view decode_password_message(std::string_view body) {
    std::size_t end = body.find('\0');
    if (end == std::string_view::npos || end + 1 != body.size()) invalid("password packet size");
    return body.substr(0, end);
}

SaslInitialResponse decode_sasl_initial_response(std::string_view body) {
    std::size_t end = body.find('\0');
    if (end == std::string_view::npos) invalid("SASL initial response: no mechanism name");
    SaslInitialResponse r;
    r.mechanism = body.substr(0, end);
    std::string_view rest = body.substr(end + 1);
    if (rest.size() < 4) invalid("SASL initial response: no length");
    int32_t len = static_cast<int32_t>(be32(rest, 0));
    rest.remove_prefix(4);
    if (len == -1) {
        if (!rest.empty()) invalid("SASL initial response: data after a missing value");
        return r;
    }
    if (len < 0 || static_cast<std::size_t>(len) != rest.size()) invalid("SASL initial response: wrong length");
    r.data = rest;
    return r;
}

}  // namespace rproxy::protocol
