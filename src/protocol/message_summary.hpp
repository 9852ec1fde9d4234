// What the message log (pg_rproxy.message_log) says about one protocol message: its name and a
// short decoded summary. Secrets are never decoded: password-family messages and the server's
// SASL challenges are summarised as "[redacted]", and the caller then writes no bytes of them.
// Nothing here trusts a length from the network; a malformed body is summarised as such.
#pragma once
#include "core/pure_layer.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace rproxy::protocol {

// "Query", "DataRow"...: frontend messages (client to server) and backend ones share letters.
const char* message_name(bool frontend, char type);

// Appends the summary of one message (its body, without the framing) as space-separated
// key=value items, strings quoted and escaped (no control byte, no newline). Returns false when
// the message carries a secret: its bytes must not be written anywhere.
bool append_summary(std::string& out, bool frontend, char type, std::string_view body);

// A value as a quoted string, escaped: \" \\ \n \r \t and \xNN for other bytes below 0x20 or 0x7f.
// Longer than limit: cut, with ...(N bytes) after the quote.
void append_quoted(std::string& out, std::string_view text, std::size_t limit);
// Lower-case hex of the first limit bytes.
void append_hex(std::string& out, std::string_view bytes, std::size_t limit);

}  // namespace rproxy::protocol
