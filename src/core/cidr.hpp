// Client addresses against CIDR blocks (IPv4, IPv6, and IPv4 mapped into IPv6), for the
// authentication rules and the routes.
#pragma once
#include "core/pure_layer.hpp"

#include <string_view>

namespace rproxy {

bool valid_cidr(std::string_view cidr);
// address: numeric, as the socket reports it. false when either does not parse.
bool address_matches(std::string_view cidr, std::string_view address);

}  // namespace rproxy
