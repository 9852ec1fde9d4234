// md5 password authentication: pg_authid holds "md5" + md5(password || user); the client answers
// the 4-byte salt with "md5" + md5(md5hex(password || user) || salt).
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <string_view>

namespace rproxy::auth {

bool is_md5_secret(std::string_view secret);
std::string md5_secret(std::string_view password, std::string_view user);
std::string md5_client_response(std::string_view secret, std::string_view salt);
bool md5_response_matches(std::string_view secret, std::string_view salt, std::string_view response);

}  // namespace rproxy::auth
