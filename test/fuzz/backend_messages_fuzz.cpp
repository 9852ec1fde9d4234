// libFuzzer: what an upstream sends, through the framing decoder and every backend message
// decoder. Where the proxy also builds the message, decoding then building again must give back
// the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/backend_decode.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/extended_messages.hpp"

using namespace rproxy::protocol;

namespace {

void round_trip(const BackendMessage& m, std::string_view framed) {
    std::string again;
    switch (m.type) {
        case 'Z': append_ready_for_query(again, decode_ready_for_query(m.body)); break;
        case 'C': append_command_complete(again, decode_command_complete(m.body)); break;
        case 'K': {
            auto k = decode_backend_key_data(m.body);
            append_backend_key_data(again, k.pid, k.key);
            break;
        }
        case 'S': {
            auto p = decode_parameter_status(m.body);
            append_parameter_status(again, p.name, p.value);
            break;
        }
        case 'A': {
            auto n = decode_notification(m.body);
            append_notification(again, n.pid, n.channel, n.payload);
            break;
        }
        case 't': append_parameter_description(again, decode_parameter_description(m.body)); break;
        case 'E': case 'N': append_error(again, decode_error_response(m.body), m.type == 'N'); break;
        case 'T': decode_row_description(m.body); return;
        case 'D': decode_data_row(m.body); return;
        case 'R': decode_authentication(m.body); return;
        case 'G': case 'H': case 'W': decode_copy_response(m.body); return;
        case 'V': decode_function_call_response(m.body); return;
        case 'v': decode_negotiate_protocol_version(m.body); return;
        default: return;
    }
    if (again != framed) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (!in.empty()) {
        try {
            std::size_t used = 0;
            auto m = decode_backend_message(in, 1 << 20, used);
            if (!m) return 0;
            if (used > in.size() || used < 5) __builtin_trap();
            round_trip(*m, in.substr(0, used));
            in.remove_prefix(used);
        } catch (const ProtocolError&) {
            return 0;  // the upstream connection is dropped here
        }
    }
    return 0;
}
