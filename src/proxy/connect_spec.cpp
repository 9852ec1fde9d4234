#include "proxy/connect_spec.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <libpq-fe.h>

#include "core/text_lists.hpp"

namespace rproxy {

namespace {


bool is_numeric_address(const std::string& h) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

}  // namespace

ConnectPlan plan_connection(const UpstreamConfig& cfg) {
    ConnectPlan plan;
    plan.spec.timeout = cfg.connect_timeout;
    if (cfg.conninfo.empty()) {
        plan.error = "pg_rproxy.upstream is not set; set it to the upstream server's libpq conninfo";
        return plan;
    }
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(cfg.conninfo.c_str(), &err);
    if (!opts) {
        std::string msg = err ? err : "out of memory";
        while (!msg.empty() && msg.back() == '\n') msg.pop_back();
        plan.error = "invalid pg_rproxy.upstream: " + msg;
        if (err) PQfreemem(err);
        return plan;
    }
    std::string options, host, hostaddr;
    bool have_app_name = false;
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
        if (!o->val) continue;
        std::string k = o->keyword, v = o->val;
        if (k == "options") { options = v; continue; }
        if (k == "host") host = v;
        if (k == "hostaddr") hostaddr = v;
        if (k == "application_name" || k == "fallback_application_name") have_app_name = true;
        if (k == "gssencmode") continue;  // always disabled below
        // Every session of a read-only upstream is made read-only below, which libpq's
        // read-write/read-only checks would see: they ask the server's role instead.
        if (!cfg.read_write && k == "target_session_attrs" && v == "read-write") v = "primary";
        if (!cfg.read_write && k == "target_session_attrs" && v == "read-only") v = "standby";
        if (k == "connect_timeout") {
            int secs = std::atoi(v.c_str());
            if (secs > 0) plan.spec.timeout = std::chrono::seconds(secs < 2 ? 2 : secs);
        }
        plan.spec.keywords.push_back(k);
        plan.spec.values.push_back(v);
    }
    PQconninfoFree(opts);

    // Defence in depth: even a statement the firewall wrongly let through cannot write.
    auto add_option = [&options](const std::string& o) { options += (options.empty() ? "" : " ") + o; };
    if (!cfg.read_write) add_option("-c default_transaction_read_only=on");
    if (cfg.statement_timeout.count() > 0) add_option("-c statement_timeout=" + std::to_string(cfg.statement_timeout.count()));
    if (!options.empty()) {
        plan.spec.keywords.push_back("options");
        plan.spec.values.push_back(options);
    }
    // The proxy speaks on the connection itself once libpq has set it up; GSS encryption keeps its
    // framing in libpq's private buffers, so it is never used (a service file cannot enable it:
    // explicit settings win).
    plan.spec.keywords.push_back("gssencmode");
    plan.spec.values.push_back("disable");
    if (!have_app_name) {
        plan.spec.keywords.push_back("fallback_application_name");
        plan.spec.values.push_back("pg_rproxy");
    }

    if (hostaddr.empty() && !host.empty()) {
        bool any = false;
        for (const auto& h : split_commas(host)) {
            bool lookup = !h.empty() && h[0] != '/' && h[0] != '@' && !is_numeric_address(h);
            plan.hosts_to_resolve.push_back(lookup ? h : std::string());
            any = any || lookup;
        }
        if (!any) plan.hosts_to_resolve.clear();
    }
    return plan;
}

std::string resolve_hosts(ConnectPlan& plan) {
    if (plan.hosts_to_resolve.empty()) return "";
    auto slot = [&](const char* keyword) -> std::string* {
        for (std::size_t i = 0; i < plan.spec.keywords.size(); ++i)
            if (plan.spec.keywords[i] == keyword) return &plan.spec.values[i];
        plan.spec.keywords.push_back(keyword);
        plan.spec.values.push_back("");
        return &plan.spec.values.back();
    };
    std::vector<std::string> hosts = split_commas(*slot("host"));
    std::string* port_value = slot("port");
    std::vector<std::string> ports = split_commas(*port_value);
    bool per_host_ports = ports.size() > 1;

    // Every address of a name becomes its own entry (host repeated, hostaddr set), so libpq tries
    // them in order exactly as it would have after its own lookup.
    std::string out_hosts, out_addrs, out_ports;
    auto add = [&](const std::string& host, const std::string& addr, const std::string& port) {
        if (!out_hosts.empty() || !out_addrs.empty() || !out_ports.empty()) {
            out_hosts += ",";
            out_addrs += ",";
            out_ports += ",";
        }
        out_hosts += host;
        out_addrs += addr;
        out_ports += port;
    };
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        const std::string& port = per_host_ports && i < ports.size() ? ports[i] : std::string();
        const std::string& name = i < plan.hosts_to_resolve.size() ? plan.hosts_to_resolve[i] : std::string();
        if (name.empty()) {  // socket path or numeric: libpq needs no lookup
            add(hosts[i], "", port);
            continue;
        }
        struct addrinfo hints = {}, *res = nullptr;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(name.c_str(), nullptr, &hints, &res);
        if (rc != 0 || !res) {
            return "could not translate host name \"" + name + "\" to address: " + gai_strerror(rc);
        }
        for (auto* ai = res; ai; ai = ai->ai_next) {
            char buf[INET6_ADDRSTRLEN] = {0};
            if (ai->ai_family == AF_INET)
                inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, buf, sizeof buf);
            else if (ai->ai_family == AF_INET6)
                inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, buf, sizeof buf);
            else
                continue;
            add(hosts[i], buf, port);
        }
        freeaddrinfo(res);
    }
    *slot("host") = out_hosts;
    *slot("hostaddr") = out_addrs;
    if (per_host_ports) *slot("port") = out_ports;
    return "";
}

std::optional<ConninfoPairs> parse_conninfo(const std::string& conninfo, std::string* error) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (!opts) {
        std::string msg = err ? err : "out of memory";
        while (!msg.empty() && msg.back() == '\n') msg.pop_back();
        if (error) *error = msg;
        if (err) PQfreemem(err);
        return std::nullopt;
    }
    ConninfoPairs pairs;
    for (PQconninfoOption* o = opts; o->keyword; ++o)
        if (o->val) pairs.emplace_back(o->keyword, o->val);
    PQconninfoFree(opts);
    return pairs;
}

std::string format_conninfo(const ConninfoPairs& pairs) {
    std::string out;
    for (const auto& [k, v] : pairs) {
        if (!out.empty()) out += ' ';
        out += k;
        out += "='";
        for (char c : v) {
            if (c == '\\' || c == '\'') out.push_back('\\');
            out.push_back(c);
        }
        out += '\'';
    }
    return out;
}

const std::string* conninfo_value(const ConninfoPairs& pairs, const std::string& keyword) {
    for (const auto& [k, v] : pairs)
        if (k == keyword) return &v;
    return nullptr;
}

void set_conninfo_value(ConninfoPairs& pairs, const std::string& keyword, const std::string& value) {
    for (auto& [k, v] : pairs)
        if (k == keyword) {
            v = value;
            return;
        }
    pairs.emplace_back(keyword, value);
}

std::vector<ServerTarget> split_servers(const ConninfoPairs& conninfo, std::string* error) {
    auto list = [&](const char* keyword) {
        const std::string* v = conninfo_value(conninfo, keyword);
        return v ? split_commas(*v) : std::vector<std::string>();
    };
    std::vector<std::string> hosts = list("host"), addrs = list("hostaddr"), ports = list("port");
    std::size_t n = std::max<std::size_t>({hosts.size(), addrs.size(), 1});
    if (hosts.size() > 1 && addrs.size() > 1 && hosts.size() != addrs.size()) {
        if (error) *error = "could not match " + std::to_string(hosts.size()) + " host names to " +
                            std::to_string(addrs.size()) + " hostaddr values";
        return {};
    }
    if (ports.size() > 1 && ports.size() != n) {
        if (error) *error = "could not match " + std::to_string(ports.size()) + " port numbers to " +
                            std::to_string(n) + " hosts";
        return {};
    }
    auto at = [](const std::vector<std::string>& v, std::size_t i) -> std::string {
        if (v.empty()) return "";
        return v.size() == 1 ? v[0] : v[i];
    };
    std::vector<ServerTarget> out;
    for (std::size_t i = 0; i < n; ++i) {
        ServerTarget t;
        t.conninfo = conninfo;
        std::string host = at(hosts, i), addr = at(addrs, i), port = at(ports, i);
        if (n > 1) {
            if (!hosts.empty()) set_conninfo_value(t.conninfo, "host", host);
            if (!addrs.empty()) set_conninfo_value(t.conninfo, "hostaddr", addr);
            if (!ports.empty()) set_conninfo_value(t.conninfo, "port", port);
        }
        t.host = !host.empty() ? host : !addr.empty() ? addr : "localhost";
        t.port = port.empty() ? "5432" : port;
        out.push_back(std::move(t));
    }
    return out;
}

std::string conninfo_problem(const std::string& conninfo) {
    std::string error;
    auto pairs = parse_conninfo(conninfo, &error);
    if (!pairs) return error;
    if (split_servers(*pairs, &error).empty()) return error;
    if (const std::string* r = conninfo_value(*pairs, "replication"))
        if (!r->empty() && *r != "0" && *r != "false" && *r != "off" && *r != "no")
            return "replication connections cannot be an upstream";
    return "";
}

bool conninfo_repeats_keywords(const std::string& conninfo) {
    std::vector<std::string> seen;
    auto add = [&seen](std::string k) {
        if (std::find(seen.begin(), seen.end(), k) != seen.end()) return true;
        seen.push_back(std::move(k));
        return false;
    };
    const std::string& s = conninfo;
    bool uri = s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
    if (uri) {
        // What the URI itself sets, then its parameters.
        std::size_t start = s.find("://") + 3, q = s.find('?', start);
        std::string body = s.substr(start, q == std::string::npos ? std::string::npos : q - start);
        std::size_t at = body.rfind('@'), slash = body.find('/', at == std::string::npos ? 0 : at);
        if (at != std::string::npos) add("user");
        std::string hosts = body.substr(at == std::string::npos ? 0 : at + 1,
                                        slash == std::string::npos ? std::string::npos : slash - (at == std::string::npos ? 0 : at + 1));
        if (!hosts.empty()) add("host");
        if (slash != std::string::npos && slash + 1 < body.size()) add("dbname");
        if (q == std::string::npos) return false;
        std::size_t i = q + 1;
        while (i < s.size()) {
            std::size_t amp = s.find('&', i);
            std::string item = s.substr(i, amp == std::string::npos ? std::string::npos : amp - i);
            std::string key = item.substr(0, item.find('='));
            if (add(key)) return true;
            if (amp == std::string::npos) break;
            i = amp + 1;
        }
        return false;
    }
    std::size_t i = 0, n = s.size();
    auto blank = [&](std::size_t j) { return j < n && std::isspace(static_cast<unsigned char>(s[j])); };
    while (i < n) {
        while (blank(i)) ++i;
        if (i >= n) break;
        std::size_t k = i;
        while (i < n && s[i] != '=' && !blank(i)) ++i;
        std::string key = s.substr(k, i - k);
        while (blank(i)) ++i;
        if (i >= n || s[i] != '=') return false;  // not ours to judge: libpq refuses it
        ++i;
        while (blank(i)) ++i;
        if (i < n && s[i] == '\'') {
            for (++i; i < n && s[i] != '\''; ++i)
                if (s[i] == '\\') ++i;
            ++i;
        } else {
            for (; i < n && !blank(i); ++i)
                if (s[i] == '\\') ++i;
        }
        if (add(key)) return true;
    }
    return false;
}

}  // namespace rproxy
