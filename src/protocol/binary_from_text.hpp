// PostgreSQL's binary format of a value, computed from the text the server sent, for the built-in
// types drivers ask binary for. libpq fetches one format per query: when a client asks for a mix
// (pgjdbc with binary transfer), the proxy fetches text and encodes the binary columns here.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rproxy::protocol {

// Whether values of this type OID can be encoded (independent of the value).
bool binary_encodable(uint32_t type_oid);

// The binary form of text, or nullopt when the text is not in the form expected (for dates and
// times: the ISO DateStyle).
std::optional<std::string> binary_from_text(uint32_t type_oid, std::string_view text);

}  // namespace rproxy::protocol
