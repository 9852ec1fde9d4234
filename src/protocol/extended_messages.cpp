#include "protocol/extended_messages.hpp"

#include "protocol/backend_decode.hpp"
#include "protocol/message_writer.hpp"
#include "protocol/wire_reader.hpp"

namespace rproxy::protocol {


bool parse_repeats(std::string_view body, const std::string& name, const std::string& query,
                   const std::vector<uint32_t>& types) {
    WireReader r(body);
    if (r.cstr_view() != name || r.cstr_view() != query) return false;
    std::size_t n = r.count(4);
    if (n != types.size()) return false;
    for (std::size_t i = 0; i < n; ++i)
        if (static_cast<uint32_t>(r.i32()) != types[i]) return false;
    r.end();
    return true;
}

ParseMessage decode_parse(std::string_view body) {
    WireReader r(body);
    ParseMessage m;
    m.name = r.cstr();
    m.query = r.cstr();
    std::size_t n = r.count(4);
    for (std::size_t i = 0; i < n; ++i) m.param_types.push_back(static_cast<uint32_t>(r.i32()));
    r.end();
    return m;
}

BindMessage decode_bind(std::string_view body) {
    WireReader r(body);
    BindMessage m;
    m.portal = r.cstr();
    m.statement = r.cstr();
    std::size_t nf = r.count(2);
    for (std::size_t i = 0; i < nf; ++i) m.param_formats.push_back(r.i16());
    std::size_t np = r.count(4);
    for (std::size_t i = 0; i < np; ++i) {
        std::string_view v;
        if (r.value(v)) m.params.emplace_back(std::string(v));
        else m.params.emplace_back(std::nullopt);
    }
    std::size_t nr = r.count(2);
    for (std::size_t i = 0; i < nr; ++i) m.result_formats.push_back(r.i16());
    r.end();
    return m;
}

TargetMessage decode_target(std::string_view body, const char* what) {
    WireReader r(body);
    TargetMessage m;
    m.kind = static_cast<char>(r.u8());
    if (m.kind != 'S' && m.kind != 'P')
        throw ProtocolError("08P01", std::string("invalid ") + what + " message subtype " + std::to_string(int(m.kind)));
    m.name = r.cstr();
    r.end();
    return m;
}

ExecuteMessage decode_execute(std::string_view body) {
    WireReader r(body);
    ExecuteMessage m;
    m.portal = r.cstr();
    m.max_rows = r.i32();
    r.end();
    return m;
}

void append_parse_complete(std::string& out) { MessageWriter(out, '1'); }
void append_bind_complete(std::string& out) { MessageWriter(out, '2'); }
void append_close_complete(std::string& out) { MessageWriter(out, '3'); }
void append_no_data(std::string& out) { MessageWriter(out, 'n'); }
void append_portal_suspended(std::string& out) { MessageWriter(out, 's'); }

void append_parameter_description(std::string& out, const std::vector<uint32_t>& types) {
    MessageWriter w(out, 't');
    w.int16(static_cast<int16_t>(types.size()));
    for (uint32_t t : types) w.int32(static_cast<int32_t>(t));
}

void append_row_description_for(std::string& out, std::string_view statement_rows, const std::vector<int16_t>& formats) {
    std::vector<FieldDescription> fields = decode_row_description(statement_rows);
    MessageWriter w(out, 'T');
    w.int16(static_cast<int16_t>(fields.size()));
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const FieldDescription& f = fields[i];
        int16_t format = formats.empty() ? 0 : formats.size() == 1 ? formats[0] : i < formats.size() ? formats[i] : 0;
        w.cstr(f.name)
            .int32(static_cast<int32_t>(f.table_oid))
            .int16(f.column)
            .int32(static_cast<int32_t>(f.type_oid))
            .int16(f.type_size)
            .int32(f.type_modifier)
            .int16(format);
    }
}

}  // namespace rproxy::protocol
