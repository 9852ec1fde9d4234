#include "core/l2_value.hpp"

#include <cstring>
#include <functional>

namespace rproxy {
namespace {

// magic, checksum, expiry, rows, key length, wire length
constexpr std::size_t kHeader = kL2Magic.size() + 8 + 8 + 8 + 4 + 4;
constexpr std::size_t kChecked = kL2Magic.size() + 8;  // the checksum covers what follows it

void put64(std::string& s, uint64_t v) {
    for (int i = 7; i >= 0; --i) s += static_cast<char>((v >> (i * 8)) & 0xff);
}
void put32(std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (i * 8)) & 0xff);
}
uint64_t get(std::string_view s, std::size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
    return v;
}
uint64_t checksum(std::string_view s) { return std::_Hash_bytes(s.data(), s.size(), 0x5bd1e9955bd1e995ull); }

// Every message whole: a type byte and a length that counts itself and stays inside the result.
bool framed(std::string_view wire) {
    std::size_t at = 0;
    while (at < wire.size()) {
        if (wire.size() - at < 5) return false;
        uint64_t len = get(wire, at + 1, 4);
        if (len < 4 || len > wire.size() - at - 1) return false;
        at += 1 + len;
    }
    return true;
}

}  // namespace

std::string encode_l2_value(std::string_view full_key, std::string_view wire, uint64_t rows, uint64_t expires_at_ms) {
    std::string v;
    v.reserve(kHeader + full_key.size() + wire.size());
    v += kL2Magic;
    put64(v, 0);
    put64(v, expires_at_ms);
    put64(v, rows);
    put32(v, static_cast<uint32_t>(full_key.size()));
    put32(v, static_cast<uint32_t>(wire.size()));
    v += full_key;
    v += wire;
    uint64_t sum = checksum(std::string_view(v).substr(kChecked));
    std::string sum_bytes;
    put64(sum_bytes, sum);
    v.replace(kL2Magic.size(), 8, sum_bytes);
    return v;
}

L2Decode decode_l2_value(std::string_view value, std::string_view full_key, uint64_t now_ms, L2Entry* out) {
    if (value.size() < kHeader || value.substr(0, kL2Magic.size()) != kL2Magic) return L2Decode::Corrupt;
    if (get(value, kL2Magic.size(), 8) != checksum(value.substr(kChecked))) return L2Decode::Corrupt;
    std::size_t at = kChecked;
    uint64_t expires = get(value, at, 8);
    uint64_t rows = get(value, at + 8, 8);
    uint64_t key_len = get(value, at + 16, 4);
    uint64_t wire_len = get(value, at + 20, 4);
    if (key_len + wire_len != value.size() - kHeader) return L2Decode::Corrupt;
    std::string_view key = value.substr(kHeader, key_len);
    std::string_view wire = value.substr(kHeader + key_len, wire_len);
    if (!framed(wire)) return L2Decode::Corrupt;
    if (key != full_key) return L2Decode::OtherKey;
    if (expires <= now_ms) return L2Decode::Expired;
    out->wire = wire;
    out->rows = rows;
    out->expires_at_ms = expires;
    return L2Decode::Ok;
}

std::string l2_entry_key(std::string_view prefix, uint64_t h1, uint64_t h2) {
    static const char digits[] = "0123456789abcdef";
    std::string k(prefix);
    k += "e:";
    for (uint64_t h : {h1, h2})
        for (int i = 15; i >= 0; --i) k += digits[(h >> (i * 4)) & 0xf];
    return k;
}

}  // namespace rproxy
