#include "protocol/backend_messages.hpp"

#include "protocol/message_writer.hpp"

namespace rproxy::protocol {

void append_authentication_ok(std::string& out) { MessageWriter(out, 'R').int32(0); }

void append_parameter_status(std::string& out, std::string_view name, std::string_view value) {
    MessageWriter(out, 'S').cstr(name).cstr(value);
}

void append_backend_key_data(std::string& out, int32_t pid, int32_t key) {
    MessageWriter(out, 'K').int32(pid).int32(key);
}

void append_ready_for_query(std::string& out, char status) {
    MessageWriter(out, 'Z').int8(static_cast<uint8_t>(status));
}

void append_command_complete(std::string& out, std::string_view tag) {
    MessageWriter(out, 'C').cstr(tag);
}

void append_empty_query_response(std::string& out) { MessageWriter(out, 'I'); }

void append_notification(std::string& out, int32_t pid, std::string_view channel, std::string_view payload) {
    MessageWriter(out, 'A').int32(pid).cstr(channel).cstr(payload);
}

void append_error(std::string& out, const ErrorFields& fields, bool notice) {
    MessageWriter w(out, notice ? 'N' : 'E');
    for (const auto& [code, value] : fields.fields) {
        // A NUL inside a value would end the field early on the client: cut it there.
        w.int8(static_cast<uint8_t>(code)).cstr(std::string_view(value.c_str()));
    }
    w.int8(0);
}

}  // namespace rproxy::protocol
