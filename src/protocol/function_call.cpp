#include "protocol/function_call.hpp"

#include "protocol/message_writer.hpp"
#include "protocol/wire_reader.hpp"

namespace rproxy::protocol {

FunctionCallMessage decode_function_call(std::string_view body) {
    WireReader r(body);
    FunctionCallMessage m;
    m.function_oid = static_cast<uint32_t>(r.i32());
    std::size_t nf = r.count(2);
    for (std::size_t i = 0; i < nf; ++i) m.arg_formats.push_back(r.i16());
    std::size_t na = r.count(4);
    for (std::size_t i = 0; i < na; ++i) {
        std::string_view v;
        if (r.value(v)) m.args.emplace_back(std::string(v));
        else m.args.emplace_back(std::nullopt);
    }
    m.result_format = r.i16();
    r.end();
    if (nf > 1 && nf != na)
        throw ProtocolError("08P01", "function call message has " + std::to_string(nf) + " argument formats but " +
                                         std::to_string(na) + " arguments");
    return m;
}

void append_function_call_response(std::string& out, std::optional<std::string_view> value) {
    MessageWriter w(out, 'V');
    if (!value) {
        w.int32(-1);
        return;
    }
    w.int32(static_cast<int32_t>(value->size())).bytes(value->data(), value->size());
}

}  // namespace rproxy::protocol
