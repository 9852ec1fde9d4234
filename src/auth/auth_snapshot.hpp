// What client authentication needs from the gateway's catalog, read in one go per connection: the
// role, its memberships, the rules and the upstream credentials mapped to it. (In auth/, beside the
// rules it carries: core stays below every other layer.)
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "auth/auth_rules.hpp"

namespace rproxy {

struct RoleAuthInfo {
    bool exists = false;
    uint32_t oid = 0;
    bool can_login = false;
    std::string secret;                      // pg_authid.rolpassword; empty when none
    std::optional<int64_t> valid_until;      // Unix seconds; nullopt = no limit
    int conn_limit = -1;                     // -1 = no limit
};

struct UpstreamCredentials {
    std::string user;
    std::string password;  // may be empty
};

struct AuthSnapshot {
    RoleAuthInfo role;
    std::set<std::string> member_of;          // every role the connecting role is a member of
    bool rules_table = false;                 // the extension (and its rules table) is installed
    std::vector<auth::AuthRule> rules;        // by position
    std::vector<std::string> rule_problems;   // rows that do not validate: then nobody gets in
    std::optional<UpstreamCredentials> mapping;
    std::string error;                        // the catalog could not be read: nobody gets in
};

}  // namespace rproxy
