#include "protocol/frontend_encode.hpp"

#include <stdexcept>

#include "protocol/frontend_messages.hpp"
#include "protocol/message_writer.hpp"
#include "protocol/wire_reader.hpp"

namespace rproxy::protocol {

namespace {

// The protocol's counts are 16 bits: a longer list cannot be sent (the server allows 65535).
// Checked before a message is begun, so that nothing half-built is left in the output.
void check_counts(std::initializer_list<std::size_t> counts) {
    for (std::size_t n : counts)
        if (n > 65535) throw std::length_error("more than 65535 items in one message");
}

int16_t count16(std::size_t n) { return static_cast<int16_t>(static_cast<uint16_t>(n)); }

void put_formats(MessageWriter& w, const std::vector<int16_t>& formats) {
    w.int16(count16(formats.size()));
    for (int16_t f : formats) w.int16(f);
}

void put_values(MessageWriter& w, const std::vector<std::optional<std::string_view>>& values) {
    w.int16(count16(values.size()));
    for (const auto& v : values) {
        if (!v) {
            w.int32(-1);
            continue;
        }
        w.int32(static_cast<int32_t>(v->size())).bytes(v->data(), v->size());
    }
}

// A startup-family packet: Int32 length (itself included), then the body.
void put_packet(std::string& out, const std::string& body) {
    MessageWriter::put32(out, static_cast<uint32_t>(body.size() + 4));
    out += body;
}

}  // namespace

void append_startup_message(std::string& out, const std::vector<std::pair<std::string, std::string>>& params) {
    std::string body;
    MessageWriter::put32(body, kProtocolVersion30);
    for (const auto& [name, value] : params) {
        body.append(name).push_back('\0');
        body.append(value).push_back('\0');
    }
    body.push_back('\0');
    put_packet(out, body);
}

void append_cancel_request(std::string& out, int32_t pid, int32_t key) {
    std::string body;
    MessageWriter::put32(body, kCancelRequestCode);
    MessageWriter::put32(body, static_cast<uint32_t>(pid));
    MessageWriter::put32(body, static_cast<uint32_t>(key));
    put_packet(out, body);
}

void append_ssl_request(std::string& out) {
    std::string body;
    MessageWriter::put32(body, kSslRequestCode);
    put_packet(out, body);
}

void append_query(std::string& out, std::string_view sql) { MessageWriter(out, 'Q').cstr(sql); }

void append_parse(std::string& out, std::string_view name, std::string_view sql, const std::vector<uint32_t>& types) {
    check_counts({types.size()});
    MessageWriter w(out, 'P');
    w.cstr(name).cstr(sql).int16(count16(types.size()));
    for (uint32_t t : types) w.int32(static_cast<int32_t>(t));
}

void append_bind(std::string& out, std::string_view portal, std::string_view statement,
                 const std::vector<int16_t>& param_formats, const std::vector<std::optional<std::string_view>>& params,
                 const std::vector<int16_t>& result_formats) {
    check_counts({param_formats.size(), params.size(), result_formats.size()});
    MessageWriter w(out, 'B');
    w.cstr(portal).cstr(statement);
    put_formats(w, param_formats);
    put_values(w, params);
    put_formats(w, result_formats);
}

void append_bind_to(std::string& out, std::string_view bind_body, std::string_view statement) {
    WireReader r(bind_body);
    std::string_view portal = r.cstr_view();
    r.cstr_view();  // the client's statement name
    std::string_view rest = r.rest();
    MessageWriter w(out, 'B');
    w.cstr(portal).cstr(statement).bytes(rest.data(), rest.size());
}

void append_describe(std::string& out, char kind, std::string_view name) {
    MessageWriter(out, 'D').int8(static_cast<uint8_t>(kind)).cstr(name);
}

void append_execute(std::string& out, std::string_view portal, int32_t max_rows) {
    MessageWriter(out, 'E').cstr(portal).int32(max_rows);
}

void append_close(std::string& out, char kind, std::string_view name) {
    MessageWriter(out, 'C').int8(static_cast<uint8_t>(kind)).cstr(name);
}

void append_sync(std::string& out) { MessageWriter(out, 'S'); }
void append_flush(std::string& out) { MessageWriter(out, 'H'); }
void append_terminate(std::string& out) { MessageWriter(out, 'X'); }

void append_copy_data(std::string& out, std::string_view data) { MessageWriter(out, 'd').bytes(data.data(), data.size()); }
void append_copy_done(std::string& out) { MessageWriter(out, 'c'); }
void append_copy_fail(std::string& out, std::string_view reason) { MessageWriter(out, 'f').cstr(reason); }

void append_function_call(std::string& out, uint32_t function_oid, const std::vector<int16_t>& arg_formats,
                          const std::vector<std::optional<std::string_view>>& args, int16_t result_format) {
    check_counts({arg_formats.size(), args.size()});
    MessageWriter w(out, 'F');
    w.int32(static_cast<int32_t>(function_oid));
    put_formats(w, arg_formats);
    put_values(w, args);
    w.int16(result_format);
}

void append_password_message(std::string& out, std::string_view password) { MessageWriter(out, 'p').cstr(password); }

void append_sasl_initial_response(std::string& out, std::string_view mechanism, std::optional<std::string_view> data) {
    MessageWriter w(out, 'p');
    w.cstr(mechanism);
    if (!data) {
        w.int32(-1);
        return;
    }
    w.int32(static_cast<int32_t>(data->size())).bytes(data->data(), data->size());
}

void append_sasl_response(std::string& out, std::string_view data) { MessageWriter(out, 'p').bytes(data.data(), data.size()); }

}  // namespace rproxy::protocol
