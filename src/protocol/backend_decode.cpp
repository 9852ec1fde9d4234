#include "protocol/backend_decode.hpp"

#include <string>

#include "protocol/wire_reader.hpp"

namespace rproxy::protocol {

namespace {

bool known_backend_type(char t) {
    switch (t) {
        case 'R': case 'S': case 'K': case 'Z': case 'T': case 'D': case 'C': case 'E': case 'N':
        case 'I': case '1': case '2': case '3': case 'n': case 's': case 't': case 'G': case 'H':
        case 'W': case 'd': case 'c': case 'A': case 'V': case 'v':
            return true;
        default:
            return false;
    }
}

[[noreturn]] void malformed(const std::string& what) { throw ProtocolError("08P01", "malformed " + what + " from the server"); }

}  // namespace

std::optional<BackendMessage> decode_backend_message(std::string_view buf, std::size_t max_size, std::size_t& consumed) {
    if (buf.empty()) return std::nullopt;
    char type = buf[0];
    if (!known_backend_type(type))
        throw ProtocolError("08P01", "unexpected message type " + std::to_string(int(static_cast<unsigned char>(type))) +
                                         " from the server");
    auto body = frame_body(buf, max_size, consumed, true);
    if (!body) return std::nullopt;
    return BackendMessage{type, *body};
}

std::optional<BackendMessage> take_backend_message(InputBuffer& in, std::size_t max_size) {
    std::size_t used = 0;
    auto msg = decode_backend_message(in.unread(), max_size, used);
    if (msg) msg->body = in.take(used).substr(5);
    return msg;
}

AuthenticationRequest decode_authentication(std::string_view body) {
    WireReader r(body);
    AuthenticationRequest a;
    a.code = r.i32();
    a.data = r.rest();
    return a;
}

ParameterStatus decode_parameter_status(std::string_view body) {
    WireReader r(body);
    ParameterStatus p{r.cstr_view(), r.cstr_view()};
    r.end();
    return p;
}

BackendKeyData decode_backend_key_data(std::string_view body) {
    WireReader r(body);
    BackendKeyData k;
    k.pid = r.i32();
    k.key = r.i32();
    r.end();
    return k;
}

char decode_ready_for_query(std::string_view body) {
    WireReader r(body);
    char status = static_cast<char>(r.u8());
    r.end();
    if (status != 'I' && status != 'T' && status != 'E') malformed("ReadyForQuery status");
    return status;
}

std::string_view decode_command_complete(std::string_view body) {
    WireReader r(body);
    std::string_view tag = r.cstr_view();
    r.end();
    return tag;
}

ErrorFields decode_error_response(std::string_view body) {
    WireReader r(body);
    ErrorFields e;
    for (;;) {
        char code = static_cast<char>(r.u8());
        if (code == '\0') break;
        e.add(code, r.cstr());
    }
    r.end();
    return e;
}

std::vector<FieldDescription> decode_row_description(std::string_view body) {
    WireReader r(body);
    std::size_t n = r.count(19);  // a name's NUL and 18 bytes of fixed fields
    std::vector<FieldDescription> fields;
    fields.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        FieldDescription f;
        f.name = r.cstr_view();
        f.table_oid = static_cast<uint32_t>(r.i32());
        f.column = r.i16();
        f.type_oid = static_cast<uint32_t>(r.i32());
        f.type_size = r.i16();
        f.type_modifier = r.i32();
        f.format = r.i16();
        fields.push_back(f);
    }
    r.end();
    return fields;
}

std::vector<std::optional<std::string_view>> decode_data_row(std::string_view body) {
    WireReader r(body);
    std::size_t n = r.count(4);
    std::vector<std::optional<std::string_view>> values;
    values.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::string_view v;
        if (r.value(v)) values.emplace_back(v);
        else values.emplace_back(std::nullopt);
    }
    r.end();
    return values;
}

std::vector<uint32_t> decode_parameter_description(std::string_view body) {
    WireReader r(body);
    std::size_t n = r.count(4);
    std::vector<uint32_t> types(n);
    for (auto& t : types) t = static_cast<uint32_t>(r.i32());
    r.end();
    return types;
}

Notification decode_notification(std::string_view body) {
    WireReader r(body);
    Notification n;
    n.pid = r.i32();
    n.channel = r.cstr_view();
    n.payload = r.cstr_view();
    r.end();
    return n;
}

CopyResponse decode_copy_response(std::string_view body) {
    WireReader r(body);
    CopyResponse c;
    c.format = static_cast<int8_t>(r.u8());
    if (c.format != 0 && c.format != 1) malformed("copy format");
    std::size_t n = r.count(2);
    c.column_formats.resize(n);
    for (auto& f : c.column_formats) f = r.i16();
    r.end();
    return c;
}

std::optional<std::string_view> decode_function_call_response(std::string_view body) {
    WireReader r(body);
    std::string_view v;
    bool present = r.value(v);
    r.end();
    if (!present) return std::nullopt;
    return v;
}

NegotiateProtocolVersion decode_negotiate_protocol_version(std::string_view body) {
    WireReader r(body);
    NegotiateProtocolVersion v;
    v.newest_minor = r.i32();
    int32_t n = r.i32();
    if (n < 0 || std::size_t(n) > body.size()) malformed("NegotiateProtocolVersion");
    for (int32_t i = 0; i < n; ++i) v.unrecognized_options.push_back(r.cstr_view());
    r.end();
    return v;
}

}  // namespace rproxy::protocol
