// libFuzzer: the startup packet family (StartupMessage, SSLRequest, CancelRequest) from raw bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/frontend_messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    try {
        std::size_t used = 0;
        if (auto p = rproxy::protocol::decode_startup_packet(in, used)) {
            if (used > in.size()) __builtin_trap();
            if (const std::string* options = p->param("options")) rproxy::protocol::parse_startup_options(*options);
        }
    } catch (const rproxy::protocol::ProtocolError&) {
    }
    return 0;
}
