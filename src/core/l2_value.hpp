// A cached result as the second level (Redis) keeps it: a header, the full cache key and the wire
// bytes. Whatever Redis hands back is checked before a byte of it reaches a client: the magic,
// every length against the value's size, a checksum, the full key (a hash collision in the Redis
// key never serves another role's rows), the expiry, and the framing of every message.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace rproxy {

constexpr std::string_view kL2Magic = "PGRPX1";

// expires_at_ms: Unix time in milliseconds (a gateway trusts an entry no longer than its TTL, even
// if Redis kept it longer).
std::string encode_l2_value(std::string_view full_key, std::string_view wire, uint64_t rows, uint64_t expires_at_ms);

enum class L2Decode {
    Ok,
    OtherKey,  // a different key under the same hash: a miss
    Expired,
    Corrupt,   // anything else that does not check out: ignored and counted
};

struct L2Entry {
    std::string_view wire;  // into the decoded value
    uint64_t rows = 0;
    uint64_t expires_at_ms = 0;
};

L2Decode decode_l2_value(std::string_view value, std::string_view full_key, uint64_t now_ms, L2Entry* out);

// The Redis key of an entry: prefix + "e:" + 32 hex digits of the two 64-bit hashes of the full key.
std::string l2_entry_key(std::string_view prefix, uint64_t h1, uint64_t h2);

}  // namespace rproxy
