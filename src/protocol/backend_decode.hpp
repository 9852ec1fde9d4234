// Decoding of what servers send (the upstream side of the proxy), one function per message type.
// As on the client side, no length or count from the network is trusted: every decoder checks
// them against the bytes of the body and throws ProtocolError (08P01) for anything malformed.
// Decoded views point into the body they were decoded from.
#pragma once
#include "core/pure_layer.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/error_fields.hpp"
#include "protocol/input_buffer.hpp"
#include "protocol/protocol_error.hpp"

namespace rproxy::protocol {

struct BackendMessage {
    char type;
    std::string_view body;
};

// One framed backend message from the front of buf; nullopt when more bytes are needed. Throws for
// an unknown type, a length below 4 or one above max_size.
std::optional<BackendMessage> decode_backend_message(std::string_view buf, std::size_t max_size, std::size_t& consumed);
// The next whole message received, taken out of in (valid until the next take; see InputBuffer).
std::optional<BackendMessage> take_backend_message(InputBuffer& in, std::size_t max_size);

struct AuthenticationRequest {  // 'R'
    int32_t code;               // 0 ok, 3 cleartext, 5 md5, 10 SASL, 11 SASL continue, 12 SASL final...
    std::string_view data;      // the rest: md5 salt, SASL mechanisms or data
};
AuthenticationRequest decode_authentication(std::string_view body);

struct ParameterStatus {  // 'S'
    std::string_view name;
    std::string_view value;
};
ParameterStatus decode_parameter_status(std::string_view body);

struct BackendKeyData {  // 'K'
    int32_t pid;
    int32_t key;
};
BackendKeyData decode_backend_key_data(std::string_view body);

// 'Z': the transaction status, 'I', 'T' or 'E'.
char decode_ready_for_query(std::string_view body);
// 'C': the command tag.
std::string_view decode_command_complete(std::string_view body);
// 'E' and 'N': every field, in order.
ErrorFields decode_error_response(std::string_view body);

struct FieldDescription {  // one column of 'T'
    std::string_view name;
    uint32_t table_oid;
    int16_t column;
    uint32_t type_oid;
    int16_t type_size;
    int32_t type_modifier;
    int16_t format;
};
std::vector<FieldDescription> decode_row_description(std::string_view body);

// 'D': each column's value, nullopt for NULL.
std::vector<std::optional<std::string_view>> decode_data_row(std::string_view body);
// 't': the parameter types.
std::vector<uint32_t> decode_parameter_description(std::string_view body);

struct Notification {  // 'A'
    int32_t pid;
    std::string_view channel;
    std::string_view payload;
};
Notification decode_notification(std::string_view body);

struct CopyResponse {  // 'G' CopyInResponse, 'H' CopyOutResponse, 'W' CopyBothResponse
    int8_t format;     // 0 text, 1 binary
    std::vector<int16_t> column_formats;
};
CopyResponse decode_copy_response(std::string_view body);

// 'V': the function's result, nullopt for NULL.
std::optional<std::string_view> decode_function_call_response(std::string_view body);

struct NegotiateProtocolVersion {  // 'v'
    int32_t newest_minor;
    std::vector<std::string_view> unrecognized_options;
};
NegotiateProtocolVersion decode_negotiate_protocol_version(std::string_view body);

}  // namespace rproxy::protocol
