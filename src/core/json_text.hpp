// JSON string literals from arbitrary bytes: a statement may hold any byte, and every line the
// audit log writes must still parse. Invalid UTF-8 becomes U+FFFD, control characters \uXXXX.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <string_view>

namespace rproxy {

// Appends "..." (quotes included).
void append_json_string(std::string& out, std::string_view bytes);

}  // namespace rproxy
