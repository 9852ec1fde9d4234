#include "auth/md5_auth.hpp"

#include "auth/crypto.hpp"

namespace rproxy::auth {

bool is_md5_secret(std::string_view secret) {
    if (secret.size() != 35 || secret.substr(0, 3) != "md5") return false;
    for (char c : secret.substr(3))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::string md5_secret(std::string_view password, std::string_view user) {
    return "md5" + md5_hex(std::string(password) + std::string(user));
}

std::string md5_client_response(std::string_view secret, std::string_view salt) {
    return "md5" + md5_hex(std::string(secret.substr(3)) + std::string(salt));
}

bool md5_response_matches(std::string_view secret, std::string_view salt, std::string_view response) {
    if (!is_md5_secret(secret)) return false;
    return equal_in_constant_time(md5_client_response(secret, salt), response);
}

}  // namespace rproxy::auth
