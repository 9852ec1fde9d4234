// The few digests SCRAM and md5 authentication need, and base64 (RFC 4648), all over OpenSSL.
#pragma once
#include "core/pure_layer.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rproxy::auth {

using Digest = std::array<uint8_t, 32>;  // SHA-256

Digest sha256(std::string_view data);
Digest hmac_sha256(const Digest& key, std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view data);
Digest pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations);
std::string md5_hex(std::string_view data);
std::string random_bytes(std::size_t n);  // from OpenSSL's CSPRNG
bool equal_in_constant_time(std::string_view a, std::string_view b);

inline std::string_view view(const Digest& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

std::string base64_encode(std::string_view data);
// nullopt on any character outside the alphabet or a wrong length or padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace rproxy::auth
