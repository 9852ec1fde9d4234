// Why connections were let in or turned away, counted per reason for pg_rproxy_connection_events,
// and how often a login had to read the catalog.
#pragma once
#include "core/pure_layer.hpp"

namespace rproxy {

enum class ConnEvent {
    Authenticated,
    PasswordFailed,        // wrong password, unknown role, expired password (28P01)
    NoMatchingRule,        // no rule for this connection (28000)
    RuleRejected,          // a reject rule (28000)
    CannotLogin,           // role without LOGIN, or not allowed over this connection type
    CertificateFailed,     // cert method: no or wrong client certificate
    RoleConnectionLimit,   // rolconnlimit reached (53300)
    MaxClientConnections,  // pg_rproxy.max_client_connections reached (53300)
    AuthenticationTimeout, // pg_rproxy.authentication_timeout expired (08006 after startup)
    RateLimited,           // pg_rproxy.connection_rate exceeded for the client address (53400)
    MessageTooLarge,       // pg_rproxy.max_message_size exceeded (54000)
    TlsHandshakeFailed,
    AuthCatalogRead,       // a login read the catalog (its role's snapshot was not current)
    NoRoute,               // no route, router or pg_rproxy.upstream for it, or its route was unusable (28000)
    Count
};
constexpr int kConnEventCount = static_cast<int>(ConnEvent::Count);

inline const char* conn_event_name(ConnEvent e) {
    switch (e) {
        case ConnEvent::Authenticated: return "authenticated";
        case ConnEvent::PasswordFailed: return "password_failed";
        case ConnEvent::NoMatchingRule: return "no_matching_rule";
        case ConnEvent::RuleRejected: return "rule_rejected";
        case ConnEvent::CannotLogin: return "cannot_login";
        case ConnEvent::CertificateFailed: return "certificate_failed";
        case ConnEvent::RoleConnectionLimit: return "role_connection_limit";
        case ConnEvent::MaxClientConnections: return "max_client_connections";
        case ConnEvent::AuthenticationTimeout: return "authentication_timeout";
        case ConnEvent::RateLimited: return "rate_limited";
        case ConnEvent::MessageTooLarge: return "message_too_large";
        case ConnEvent::TlsHandshakeFailed: return "tls_handshake_failed";
        case ConnEvent::AuthCatalogRead: return "auth_catalog_read";
        case ConnEvent::NoRoute: return "no_route";
        case ConnEvent::Count: break;
    }
    return "?";
}

}  // namespace rproxy
