#include "auth/auth_rules.hpp"

#include "core/cidr.hpp"
#include "core/text_lists.hpp"


namespace rproxy::auth {

namespace {

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

std::optional<AuthRule> first_match(const std::vector<AuthRule>& rules, const ConnectionFacts& facts,
                                    const MembershipCheck& is_member) {
    for (const auto& r : rules) {
        if (r.connection_type == "hostssl" && !facts.tls) continue;
        if (r.connection_type == "hostnossl" && facts.tls) continue;
        if (!database_matches(r.databases, facts.database)) continue;
        if (!role_matches(r.roles, facts.role, is_member)) continue;
        if (r.address != "all" && !rproxy::address_matches(r.address, facts.client_address)) continue;
        return r;
    }
    return std::nullopt;
}

std::optional<std::string> rule_error(const AuthRule& r) {
    if (r.connection_type != "host" && r.connection_type != "hostssl" && r.connection_type != "hostnossl")
        return "connection type must be host, hostssl or hostnossl";
    if (r.address != "all" && !valid_cidr(r.address)) return "address must be all or a CIDR such as 10.0.0.0/8";
    if (split_names(r.databases).empty()) return "databases must name at least one database, or all";
    if (split_names(r.roles).empty()) return "roles must name at least one role, +group, or all";
    return std::nullopt;
}

}  // namespace rproxy::auth
