#include "protocol/message_summary.hpp"

#include <algorithm>
#include <utility>

#include "protocol/backend_decode.hpp"
#include "protocol/protocol_error.hpp"
#include "protocol/wire_reader.hpp"

namespace rproxy::protocol {

namespace {

constexpr std::size_t kStatementLimit = 4096;  // statement text
constexpr std::size_t kValueLimit = 256;       // one parameter, setting or field value
constexpr std::size_t kNameLimit = 64;         // a column, portal or statement name
constexpr std::size_t kMaxItems = 64;          // parameters or columns listed

void item(std::string& out, const char* key) {
    if (!out.empty() && out.back() != ' ') out += ' ';
    out += key;
    out += '=';
}

void quoted_item(std::string& out, const char* key, std::string_view value, std::size_t limit) {
    item(out, key);
    append_quoted(out, value, limit);
}

void number_item(std::string& out, const char* key, long long v) {
    item(out, key);
    out += std::to_string(v);
}

void more(std::string& out, std::size_t listed, std::size_t total) {
    if (listed < total) out += ",...(" + std::to_string(total) + ")";
}

void summarize_bind(std::string& out, std::string_view body) {
    WireReader r(body);
    quoted_item(out, "portal", r.cstr_view(), kNameLimit);
    quoted_item(out, "statement", r.cstr_view(), kNameLimit);
    std::size_t nformats = r.count(2);
    int16_t first_format = 0;
    std::string_view formats = r.bytes_view(nformats * 2);
    auto format_at = [&formats](std::size_t i) {
        return static_cast<int16_t>((static_cast<uint8_t>(formats[2 * i]) << 8) | static_cast<uint8_t>(formats[2 * i + 1]));
    };
    if (nformats > 0) first_format = format_at(0);
    std::size_t nparams = r.count(4);
    item(out, "params");
    out += '(';
    for (std::size_t i = 0; i < nparams; ++i) {
        std::string_view v;
        bool present = r.value(v);
        if (i >= kMaxItems) continue;  // read on: the rest of the message is checked all the same
        if (i > 0) out += ',';
        int16_t format = first_format;
        if (nformats > 1 && i < nformats) format = format_at(i);
        if (!present) {
            out += "NULL";
        } else if (format == 0) {
            append_quoted(out, v, kValueLimit);
        } else {
            out += "x'";
            append_hex(out, v, kValueLimit / 4);
            out += '\'';
            if (v.size() > kValueLimit / 4) out += "...(" + std::to_string(v.size()) + " bytes)";
        }
    }
    more(out, std::min(nparams, kMaxItems), nparams);
    out += ')';
}

void summarize_error(std::string& out, std::string_view body) {
    ErrorFields e = decode_error_response(body);
    const std::string* severity = e.find('V');
    if (!severity) severity = e.find('S');
    if (severity) quoted_item(out, "severity", *severity, kNameLimit);
    static constexpr std::pair<char, const char*> kShown[] = {
        {'C', "code"}, {'M', "message"}, {'D', "detail"}, {'H', "hint"}, {'P', "position"}};
    for (const auto& [code, key] : kShown)
        if (const std::string* v = e.find(code)) quoted_item(out, key, *v, kValueLimit);
}

bool summarize_authentication(std::string& out, std::string_view body) {
    AuthenticationRequest a = decode_authentication(body);
    const char* name = "other";
    bool secret = false;
    switch (a.code) {
        case 0: name = "Ok"; break;
        case 2: name = "KerberosV5"; break;
        case 3: name = "CleartextPassword"; break;
        case 5: name = "MD5Password"; secret = true; break;  // the salt
        case 7: name = "GSS"; break;
        case 8: name = "GSSContinue"; secret = true; break;
        case 9: name = "SSPI"; break;
        case 10: name = "SASL"; break;
        case 11: name = "SASLContinue"; secret = true; break;
        case 12: name = "SASLFinal"; secret = true; break;
        default: break;
    }
    item(out, "request");
    out += name;
    if (secret) {
        out += " [redacted]";
        return false;
    }
    if (a.code == 10) {
        std::string list;
        std::string_view rest = a.data;
        while (!rest.empty() && rest[0] != '\0') {
            std::size_t end = rest.find('\0');
            if (end == std::string_view::npos) break;
            if (!list.empty()) list += ',';
            list.append(rest.substr(0, end));
            rest.remove_prefix(end + 1);
        }
        quoted_item(out, "mechanisms", list, kValueLimit);
    }
    return true;
}

bool summarize_frontend(std::string& out, char type, std::string_view body) {
    switch (type) {
        case 'p':
            // PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse: never decoded.
            out += "[redacted]";
            return false;
        case 'Q': {
            WireReader r(body);
            quoted_item(out, "sql", r.cstr_view(), kStatementLimit);
            break;
        }
        case 'P': {
            WireReader r(body);
            quoted_item(out, "statement", r.cstr_view(), kNameLimit);
            quoted_item(out, "sql", r.cstr_view(), kStatementLimit);
            std::size_t n = r.count(4);
            if (n > 0) {
                item(out, "types");
                for (std::size_t i = 0; i < n; ++i) {
                    uint32_t oid = static_cast<uint32_t>(r.i32());
                    if (i >= kMaxItems) continue;
                    if (i > 0) out += ',';
                    out += std::to_string(oid);
                }
                more(out, std::min(n, kMaxItems), n);
            }
            break;
        }
        case 'B':
            summarize_bind(out, body);
            break;
        case 'D': case 'C': {
            WireReader r(body);
            item(out, "kind");
            char kind = static_cast<char>(r.u8());
            out += kind == 'S' ? "statement" : kind == 'P' ? "portal" : "?";
            quoted_item(out, "name", r.cstr_view(), kNameLimit);
            break;
        }
        case 'E': {
            WireReader r(body);
            quoted_item(out, "portal", r.cstr_view(), kNameLimit);
            number_item(out, "max_rows", r.i32());
            break;
        }
        case 'f': {
            WireReader r(body);
            quoted_item(out, "reason", r.cstr_view(), kValueLimit);
            break;
        }
        case 'F': {
            WireReader r(body);
            number_item(out, "function", static_cast<uint32_t>(r.i32()));
            break;
        }
        default:
            break;
    }
    return true;
}

bool summarize_backend(std::string& out, char type, std::string_view body) {
    switch (type) {
        case 'R':
            return summarize_authentication(out, body);
        case 'K': {
            BackendKeyData k = decode_backend_key_data(body);
            number_item(out, "pid", k.pid);
            out += " key=[redacted]";  // the cancel key lets anyone cancel this session's statements
            return false;
        }
        case 'C':
            quoted_item(out, "tag", decode_command_complete(body), kValueLimit);
            break;
        case 'E': case 'N':
            summarize_error(out, body);
            break;
        case 'T': {
            auto fields = decode_row_description(body);
            item(out, "columns");
            out += '(';
            for (std::size_t i = 0; i < fields.size() && i < kMaxItems; ++i) {
                if (i > 0) out += ',';
                append_quoted(out, fields[i].name, kNameLimit);
            }
            more(out, std::min(fields.size(), kMaxItems), fields.size());
            out += ')';
            break;
        }
        case 'D':
            number_item(out, "columns", static_cast<long long>(decode_data_row(body).size()));
            break;
        case 'Z':
            item(out, "status");
            out += decode_ready_for_query(body);
            break;
        case 'S': {
            ParameterStatus s = decode_parameter_status(body);
            quoted_item(out, "name", s.name, kNameLimit);
            quoted_item(out, "value", s.value, kValueLimit);
            break;
        }
        case 'A': {
            Notification n = decode_notification(body);
            number_item(out, "pid", n.pid);
            quoted_item(out, "channel", n.channel, kNameLimit);
            quoted_item(out, "payload", n.payload, kValueLimit);
            break;
        }
        case 't': {
            auto types = decode_parameter_description(body);
            item(out, "types");
            for (std::size_t i = 0; i < types.size() && i < kMaxItems; ++i) {
                if (i > 0) out += ',';
                out += std::to_string(types[i]);
            }
            more(out, std::min(types.size(), kMaxItems), types.size());
            break;
        }
        case 'G': case 'H': case 'W': {
            CopyResponse c = decode_copy_response(body);
            number_item(out, "format", c.format);
            number_item(out, "columns", static_cast<long long>(c.column_formats.size()));
            break;
        }
        default:
            break;
    }
    return true;
}

}  // namespace

const char* message_name(bool frontend, char type) {
    if (frontend) {
        switch (type) {
            case 'B': return "Bind";
            case 'C': return "Close";
            case 'd': return "CopyData";
            case 'c': return "CopyDone";
            case 'f': return "CopyFail";
            case 'D': return "Describe";
            case 'E': return "Execute";
            case 'H': return "Flush";
            case 'F': return "FunctionCall";
            case 'P': return "Parse";
            case 'p': return "PasswordMessage";
            case 'Q': return "Query";
            case 'S': return "Sync";
            case 'X': return "Terminate";
            default: return "Unknown";
        }
    }
    switch (type) {
        case 'R': return "Authentication";
        case 'K': return "BackendKeyData";
        case '2': return "BindComplete";
        case '3': return "CloseComplete";
        case 'C': return "CommandComplete";
        case 'd': return "CopyData";
        case 'c': return "CopyDone";
        case 'G': return "CopyInResponse";
        case 'H': return "CopyOutResponse";
        case 'W': return "CopyBothResponse";
        case 'D': return "DataRow";
        case 'I': return "EmptyQueryResponse";
        case 'E': return "ErrorResponse";
        case 'V': return "FunctionCallResponse";
        case 'v': return "NegotiateProtocolVersion";
        case 'n': return "NoData";
        case 'N': return "NoticeResponse";
        case 'A': return "NotificationResponse";
        case 't': return "ParameterDescription";
        case 'S': return "ParameterStatus";
        case '1': return "ParseComplete";
        case 's': return "PortalSuspended";
        case 'Z': return "ReadyForQuery";
        case 'T': return "RowDescription";
        default: return "Unknown";
    }
}

bool append_summary(std::string& out, bool frontend, char type, std::string_view body) {
    std::size_t start = out.size();
    try {
        return frontend ? summarize_frontend(out, type, body) : summarize_backend(out, type, body);
    } catch (const ProtocolError&) {
        out.resize(start);
        if (frontend && type == 'p') return false;
        out += "[malformed]";
        return true;
    }
}

void append_quoted(std::string& out, std::string_view text, std::size_t limit) {
    static const char kHex[] = "0123456789abcdef";
    out += '"';
    std::size_t n = text.size() < limit ? text.size() : limit;
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\x";
                    out += kHex[c >> 4];
                    out += kHex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
    if (text.size() > limit) out += "...(" + std::to_string(text.size()) + " bytes)";
}

void append_hex(std::string& out, std::string_view bytes, std::size_t limit) {
    static const char kHex[] = "0123456789abcdef";
    std::size_t n = bytes.size() < limit ? bytes.size() : limit;
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char c = static_cast<unsigned char>(bytes[i]);
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
}

}  // namespace rproxy::protocol
