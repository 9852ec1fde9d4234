#include "auth/auth_rules.hpp"

#include "core/text_lists.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace rproxy::auth {

namespace {

// An address as 16 bytes (IPv4 mapped into ::ffff:0:0/96) and its family.
struct Address {
    unsigned char bytes[16] = {};
    bool v4 = false;
};

std::optional<Address> parse_address(std::string_view text) {
    std::string s(text);
    Address a;
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        a.v4 = true;
        a.bytes[10] = a.bytes[11] = 0xff;
        std::memcpy(a.bytes + 12, &v4, 4);
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) {
        // ::ffff:a.b.c.d is the IPv4 address it maps
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        a.v4 = std::memcmp(a.bytes, mapped, 12) == 0;
        return a;
    }
    return std::nullopt;
}

struct Cidr {
    Address net;
    int bits = 0;  // over the 128-bit form
};

std::optional<Cidr> parse_cidr(std::string_view text) {
    std::size_t slash = text.find('/');
    auto net = parse_address(text.substr(0, slash));
    if (!net) return std::nullopt;
    int max_bits = net->v4 ? 32 : 128;
    int bits = max_bits;
    if (slash != std::string_view::npos) {
        std::string_view b = text.substr(slash + 1);
        auto [p, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
        if (ec != std::errc() || p != b.data() + b.size() || bits < 0 || bits > max_bits) return std::nullopt;
    }
    return Cidr{*net, net->v4 ? bits + 96 : bits};
}

bool in_cidr(const Cidr& c, const Address& a) {
    if (c.net.v4 != a.v4) return false;
    for (int i = 0; i < c.bits; ++i) {
        int byte = i / 8, bit = 7 - i % 8;
        if (((c.net.bytes[byte] >> bit) & 1) != ((a.bytes[byte] >> bit) & 1)) return false;
    }
    return true;
}

bool database_matches(std::string_view list, const std::string& database) {
    for (auto item : split_names(list))
        if (item == "all" || item == database) return true;
    return false;
}

bool role_matches(std::string_view list, const std::string& role, const MembershipCheck& is_member) {
    for (auto item : split_names(list)) {
        if (item == "all" || item == role) return true;
        if (item.size() > 1 && item[0] == '+' && is_member && is_member(std::string(item.substr(1)))) return true;
    }
    return false;
}

}  // namespace

std::optional<Method> parse_method(std::string_view name) {
    if (name == "trust") return Method::Trust;
    if (name == "reject") return Method::Reject;
    if (name == "scram-sha-256") return Method::ScramSha256;
    if (name == "md5") return Method::Md5;
    if (name == "password") return Method::Password;
    if (name == "cert") return Method::Cert;
    return std::nullopt;
}

const char* method_name(Method m) {
    switch (m) {
        case Method::Trust: return "trust";
        case Method::Reject: return "reject";
        case Method::ScramSha256: return "scram-sha-256";
        case Method::Md5: return "md5";
        case Method::Password: return "password";
        case Method::Cert: return "cert";
    }
    return "?";
}

bool address_matches(std::string_view cidr, std::string_view address) {
    if (cidr == "all") return true;
    auto c = parse_cidr(cidr);
    auto a = parse_address(address);
    return c && a && in_cidr(*c, *a);
}

std::optional<AuthRule> first_match(const std::vector<AuthRule>& rules, const ConnectionFacts& facts,
                                    const MembershipCheck& is_member) {
    for (const auto& r : rules) {
        if (r.connection_type == "hostssl" && !facts.tls) continue;
        if (r.connection_type == "hostnossl" && facts.tls) continue;
        if (!database_matches(r.databases, facts.database)) continue;
        if (!role_matches(r.roles, facts.role, is_member)) continue;
        if (!address_matches(r.address, facts.client_address)) continue;
        return r;
    }
    return std::nullopt;
}

std::optional<std::string> rule_error(const AuthRule& r) {
    if (r.connection_type != "host" && r.connection_type != "hostssl" && r.connection_type != "hostnossl")
        return "connection type must be host, hostssl or hostnossl";
    if (r.address != "all" && !parse_cidr(r.address)) return "address must be all or a CIDR such as 10.0.0.0/8";
    if (split_names(r.databases).empty()) return "databases must name at least one database, or all";
    if (split_names(r.roles).empty()) return "roles must name at least one role, +group, or all";
    return std::nullopt;
}

}  // namespace rproxy::auth
