#include "protocol/frontend_messages.hpp"

#include <algorithm>
#include <cctype>

#include "protocol/wire_reader.hpp"

namespace rproxy::protocol {

namespace {

[[noreturn]] void violation(const std::string& message) { throw ProtocolError("08P01", message); }

// Reads a NUL-terminated string starting at pos; advances pos past the NUL.
std::string_view read_cstr(std::string_view body, std::size_t& pos, const char* what) {
    std::size_t end = body.find('\0', pos);
    if (end == std::string_view::npos) violation(std::string("invalid startup packet layout: unterminated ") + what);
    std::string_view s = body.substr(pos, end - pos);
    pos = end + 1;
    return s;
}

bool known_frontend_type(char t) {
    switch (t) {
        case 'Q': case 'P': case 'B': case 'E': case 'D': case 'C': case 'S': case 'H':
        case 'F': case 'X': case 'd': case 'c': case 'f': case 'p':
            return true;
        default:
            return false;
    }
}

}  // namespace

const std::string* StartupPacket::param(std::string_view name) const {
    for (const auto& [k, v] : params)
        if (k == name) return &v;
    return nullptr;
}

std::optional<StartupPacket> decode_startup_packet(std::string_view buf, std::size_t& consumed) {
    if (buf.size() < 4) return std::nullopt;
    uint32_t len = be32(buf, 0);
    if (len < 8 || len > kMaxStartupPacketLength) violation("invalid length of startup packet");
    if (buf.size() < len) return std::nullopt;
    std::string_view body = buf.substr(4, len - 4);
    uint32_t code = be32(body, 0);

    StartupPacket p;
    consumed = len;
    if (code == kSslRequestCode || code == kGssEncRequestCode) {
        if (len != 8) violation("invalid length of startup packet");
        p.kind = code == kSslRequestCode ? StartupPacket::Kind::SslRequest
                                         : StartupPacket::Kind::GssEncRequest;
        return p;
    }
    if (code == kCancelRequestCode) {
        if (len != 16) violation("invalid length of cancel request packet");
        p.kind = StartupPacket::Kind::CancelRequest;
        p.cancel_pid = static_cast<int32_t>(be32(body, 4));
        p.cancel_key = static_cast<int32_t>(be32(body, 8));
        return p;
    }
    uint32_t major = code >> 16, minor = code & 0xffff;
    if (major != 3 || minor != 0) {
        violation("unsupported frontend protocol " + std::to_string(major) + "." +
                  std::to_string(minor) + ": server supports 3.0 to 3.0");
    }
    p.kind = StartupPacket::Kind::Startup;
    p.version = code;
    std::size_t pos = 4;
    for (;;) {
        if (pos >= body.size()) violation("invalid startup packet layout: expected terminator as last byte");
        if (body[pos] == '\0') {
            if (pos + 1 != body.size()) violation("invalid startup packet layout: expected terminator as last byte");
            break;
        }
        std::string name(read_cstr(body, pos, "parameter name"));
        std::string value(read_cstr(body, pos, "parameter value"));
        p.params.emplace_back(std::move(name), std::move(value));
    }
    if (!p.param("user") || p.param("user")->empty())
        violation("no PostgreSQL user name specified in startup packet");
    return p;
}

std::optional<FrontendMessage> decode_message(std::string_view buf, std::size_t max_size,
                                              std::size_t& consumed) {
    if (buf.empty()) return std::nullopt;
    char type = buf[0];
    if (!known_frontend_type(type)) {
        violation("invalid frontend message type " +
                  std::to_string(static_cast<int>(static_cast<unsigned char>(type))));
    }
    auto body = frame_body(buf, max_size, consumed, false);
    if (!body) return std::nullopt;
    return FrontendMessage{type, *body};
}

std::optional<FrontendMessage> take_message(InputBuffer& in, std::size_t max_size) {
    std::size_t used = 0;
    auto msg = decode_message(in.unread(), max_size, used);
    if (msg) msg->body = in.take(used).substr(5);
    return msg;
}

std::string_view decode_query(std::string_view body) {
    std::size_t nul = body.find('\0');
    if (nul == std::string_view::npos || nul + 1 != body.size())
        violation("invalid string in message");
    return body.substr(0, nul);
}

std::vector<std::pair<std::string, std::string>> parse_startup_options(std::string_view options) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false, escaped = false;
    for (char c : options) {
        if (escaped) {
            cur.push_back(c);
            escaped = false;
            in_word = true;
        } else if (c == '\\') {
            escaped = true;
            in_word = true;
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            if (in_word) words.push_back(std::move(cur));
            cur.clear();
            in_word = false;
        } else {
            cur.push_back(c);
            in_word = true;
        }
    }
    if (in_word) words.push_back(std::move(cur));

    std::vector<std::pair<std::string, std::string>> out;
    auto add = [&](std::string_view setting, bool long_form) {
        std::size_t eq = setting.find('=');
        if (eq == std::string_view::npos || eq == 0)
            violation("invalid command-line argument in startup options: " + std::string(setting));
        std::string name(setting.substr(0, eq));
        if (long_form) std::replace(name.begin(), name.end(), '-', '_');
        out.emplace_back(std::move(name), std::string(setting.substr(eq + 1)));
    };
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        if (w == "-c") {
            if (i + 1 >= words.size()) violation("invalid startup options: -c requires a value");
            add(words[++i], false);
        } else if (w.rfind("-c", 0) == 0) {
            add(std::string_view(w).substr(2), false);
        } else if (w.rfind("--", 0) == 0) {
            add(std::string_view(w).substr(2), true);
        } else {
            violation("invalid command-line argument in startup options: " + w);
        }
    }
    return out;
}

}  // namespace rproxy::protocol
