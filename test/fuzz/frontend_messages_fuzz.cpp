// libFuzzer: every frontend message decoder, behind the framing decoder, as a session feeds them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/auth_messages.hpp"
#include "protocol/extended_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/function_call.hpp"

using namespace rproxy::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (!in.empty()) {
        try {
            std::size_t used = 0;
            auto msg = decode_message(in, 1 << 20, used);
            if (!msg) return 0;
            if (used > in.size() || used < 5) __builtin_trap();
            in.remove_prefix(used);
            switch (msg->type) {
                case 'Q': decode_query(msg->body); break;
                case 'P': decode_parse(msg->body); break;
                case 'B': decode_bind(msg->body); break;
                case 'D': decode_target(msg->body, "Describe"); break;
                case 'C': decode_target(msg->body, "Close"); break;
                case 'E': decode_execute(msg->body); break;
                case 'F': decode_function_call(msg->body); break;
                case 'p':
                    decode_password_message(msg->body);
                    decode_sasl_initial_response(msg->body);
                    break;
                default: break;
            }
        } catch (const ProtocolError&) {
            return 0;  // the session ends the connection here
        }
    }
    return 0;
}
