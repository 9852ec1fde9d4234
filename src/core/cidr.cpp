#include "core/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <optional>
#include <string>

namespace rproxy {

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

}  // namespace

bool valid_cidr(std::string_view cidr) { return parse_cidr(cidr).has_value(); }

bool address_matches(std::string_view cidr, std::string_view address) {
    auto c = parse_cidr(cidr);
    auto a = parse_address(address);
    return c && a && in_cidr(*c, *a);
}

}  // namespace rproxy
