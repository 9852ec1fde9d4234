#include "core/redis_url.hpp"

#include <charconv>

namespace rproxy {
namespace {

bool parse_int(std::string_view s, int lo, int hi, int* out) {
    if (s.empty()) return false;
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Passwords may hold reserved characters percent-encoded, as in any URL.
bool percent_decode(std::string_view in, std::string* out) {
    out->clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            *out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) return false;
        int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        *out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

}  // namespace

std::string RedisEndpoint::describe() const {
    std::string s = socket_path.empty() ? "redis://" : "unix://";
    if (!user.empty() || !password.empty()) s += (user.empty() ? "" : user) + ":***@";
    if (socket_path.empty()) s += (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    else s += socket_path;
    if (db) s += (socket_path.empty() ? "/" : "?db=") + std::to_string(db);
    return s;
}

std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string* error) {
    RedisEndpoint ep;
    auto fail = [&](const char* why) -> std::optional<RedisEndpoint> {
        *error = why;
        return std::nullopt;
    };
    if (url.substr(0, 7) == "unix://") {
        std::string_view rest = url.substr(7);
        std::size_t q = rest.find('?');
        ep.socket_path = std::string(rest.substr(0, q));
        if (ep.socket_path.empty() || ep.socket_path[0] != '/') return fail("a unix:// URL needs an absolute socket path");
        if (q != std::string_view::npos) {
            std::string_view query = rest.substr(q + 1);
            if (query.substr(0, 3) != "db=" || !parse_int(query.substr(3), 0, 1 << 20, &ep.db))
                return fail("the only option of a unix:// URL is db=N");
        }
        return ep;
    }
    if (url.substr(0, 8) != "redis://") return fail("expected redis://[user:password@]host:port[/db] or unix:///path");
    std::string_view rest = url.substr(8);
    std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        std::string_view db = rest.substr(slash + 1);
        if (!db.empty() && !parse_int(db, 0, 1 << 20, &ep.db)) return fail("the database after / must be a number");
    }
    std::size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
        std::string_view cred = authority.substr(0, at);
        authority = authority.substr(at + 1);
        std::size_t colon = cred.find(':');
        if (colon == std::string_view::npos) {
            if (!percent_decode(cred, &ep.password)) return fail("bad percent-encoding in the password");
        } else {
            if (!percent_decode(cred.substr(0, colon), &ep.user)) return fail("bad percent-encoding in the user");
            if (!percent_decode(cred.substr(colon + 1), &ep.password)) return fail("bad percent-encoding in the password");
        }
    }
    std::string_view port;
    if (!authority.empty() && authority[0] == '[') {
        std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return fail("unclosed [ in the host");
        ep.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return fail("expected :port after the host");
            port = after.substr(1);
        }
    } else {
        std::size_t colon = authority.rfind(':');
        ep.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (ep.host.empty()) return fail("the URL names no host");
    if (!port.empty() && !parse_int(port, 1, 65535, &ep.port)) return fail("the port must be a number from 1 to 65535");
    return ep;
}

}  // namespace rproxy
