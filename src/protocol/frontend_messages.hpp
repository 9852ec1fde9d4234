// Decoding of what clients send: the startup packet family and framed v3 messages. Nothing here
// trusts a length from the network: lengths are checked against limits before anything is kept,
// and a decoder only ever looks at bytes that have actually arrived.
#pragma once
#include "core/pure_layer.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/input_buffer.hpp"
#include "protocol/protocol_error.hpp"

namespace rproxy::protocol {


constexpr uint32_t kProtocolVersion30 = 196608;  // 3.0
constexpr uint32_t kCancelRequestCode = 80877102;
constexpr uint32_t kSslRequestCode = 80877103;
constexpr uint32_t kGssEncRequestCode = 80877104;
constexpr std::size_t kMaxStartupPacketLength = 10000;  // as PostgreSQL's MAX_STARTUP_PACKET_LENGTH

struct StartupPacket {
    enum class Kind { SslRequest, GssEncRequest, CancelRequest, Startup };
    Kind kind = Kind::Startup;
    uint32_t version = 0;
    std::vector<std::pair<std::string, std::string>> params;  // Startup only
    int32_t cancel_pid = 0;                                   // CancelRequest only
    int32_t cancel_key = 0;

    const std::string* param(std::string_view name) const;
};

// Decodes one startup-family packet from the front of buf. Returns nullopt when more bytes are
// needed; on success sets consumed. Throws ProtocolError for anything malformed, including protocol
// versions other than 3.0 (the message says which versions are supported).
std::optional<StartupPacket> decode_startup_packet(std::string_view buf, std::size_t& consumed);

struct FrontendMessage {
    char type;
    std::string_view body;  // points into the caller's buffer
};

// Decodes one framed message from the front of buf. Returns nullopt when more bytes are needed.
// Throws ProtocolError for an unknown type, a length below 4 or above max_size.
std::optional<FrontendMessage> decode_message(std::string_view buf, std::size_t max_size,
                                              std::size_t& consumed);

// The next whole message received, taken out of in: its body stays valid until the next take from
// in, whatever is read into in meanwhile. nullopt when more bytes are needed; throws as
// decode_message, as soon as the header shows the message is bad (before its body is buffered).
std::optional<FrontendMessage> take_message(InputBuffer& in, std::size_t max_size);

// The SQL text of a Query ('Q') body: exactly one NUL-terminated string.
std::string_view decode_query(std::string_view body);

// Splits a startup "options" value the way the server does (whitespace separated, backslash
// escapes the next character) and returns the -c name=value / --name=value settings in it.
std::vector<std::pair<std::string, std::string>> parse_startup_options(std::string_view options);

}  // namespace rproxy::protocol
