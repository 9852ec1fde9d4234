#include "core/routing.hpp"

#include <algorithm>
#include <cctype>

#include "core/cidr.hpp"

namespace rproxy {

namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool role_matches(const std::string& want, const std::string& role,
                  const std::function<bool(const std::string&)>& is_member) {
    if (want.size() > 1 && want[0] == '+') return want.substr(1) == role || (is_member && is_member(want.substr(1)));
    return want == role;
}

}  // namespace

bool server_name_matches(const std::string& pattern, const std::string& name) {
    if (name.empty()) return false;
    std::string p = lower(pattern), n = lower(name);
    if (p.rfind("*.", 0) != 0) return p == n;
    std::string suffix = p.substr(1);  // ".domain"
    if (n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
    std::string label = n.substr(0, n.size() - suffix.size());
    return label.find('.') == std::string::npos;
}

const Route* first_route(const std::vector<Route>& routes, const RouteFacts& facts,
                         const std::function<bool(const std::string&)>& is_member) {
    for (const auto& r : routes) {
        if (r.server_name && !server_name_matches(*r.server_name, facts.server_name)) continue;
        if (r.database && *r.database != facts.database) continue;
        if (r.role && !role_matches(*r.role, facts.role, is_member)) continue;
        if (r.client_address && !address_matches(*r.client_address, facts.client_address)) continue;
        if (r.listen_port && *r.listen_port != facts.listen_port) continue;
        return &r;
    }
    return nullptr;
}

const ServerCertificate* certificate_for(const std::vector<ServerCertificate>& certificates, const std::string& name) {
    if (name.empty()) return nullptr;
    for (const auto& c : certificates)
        if (c.server_name.rfind("*.", 0) != 0 && server_name_matches(c.server_name, name)) return &c;
    for (const auto& c : certificates)
        if (c.server_name.rfind("*.", 0) == 0 && server_name_matches(c.server_name, name)) return &c;
    return nullptr;
}

RouterAnswerKind classify_router_answer(const std::string& answer, const RoutingSnapshot& snapshot) {
    if (snapshot.upstreams.count(answer)) return RouterAnswerKind::Upstream;
    if (answer.rfind("postgresql://", 0) == 0 || answer.rfind("postgres://", 0) == 0 ||
        answer.find('=') != std::string::npos)
        return RouterAnswerKind::Conninfo;
    return RouterAnswerKind::Garbage;
}

}  // namespace rproxy
