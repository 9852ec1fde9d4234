// Who may connect, and how: an ordered list of rules read from the extension's auth_rules table,
// evaluated like pg_hba.conf (first match wins, no match = rejected).
#pragma once
#include "core/pure_layer.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rproxy::auth {

enum class Method { Trust, Reject, ScramSha256, Md5, Password, Cert };

std::optional<Method> parse_method(std::string_view name);
const char* method_name(Method m);

struct AuthRule {
    int position = 0;
    std::string connection_type = "host";  // host | hostssl | hostnossl
    std::string databases = "all";         // all, or names separated by commas
    std::string roles = "all";             // all, names, +group (member of group), separated by commas
    std::string address = "all";           // all, or a CIDR (IPv4 or IPv6)
    Method method = Method::ScramSha256;
    std::string upstream;                  // conninfo the rule admits to; empty: pg_rproxy.upstream
};

struct ConnectionFacts {
    bool tls = false;
    std::string database;
    std::string role;
    std::string client_address;  // numeric, as the socket reports it
};

// is_member(group): whether the connecting role is a member of group (directly or not).
using MembershipCheck = std::function<bool(const std::string& group)>;

// The first rule that applies, or nullopt.
std::optional<AuthRule> first_match(const std::vector<AuthRule>& rules, const ConnectionFacts& facts,
                                    const MembershipCheck& is_member);

// Validates one rule's text fields; the error names what is wrong (for the table's check).
std::optional<std::string> rule_error(const AuthRule& rule);

}  // namespace rproxy::auth
