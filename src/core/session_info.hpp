// What the pg_rproxy_sessions view shows of one authenticated client. Written once, when the
// client is admitted, so the per-statement path never touches shared memory for it.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>

namespace rproxy {

// Text rendered from the fields of the object that holds it: a copy starts empty, since the copy
// may be changed.
struct RenderedText {
    mutable std::string text;
    RenderedText() = default;
    RenderedText(const RenderedText&) {}
    RenderedText& operator=(const RenderedText&) {
        text.clear();
        return *this;
    }
};

struct SessionInfo {
    int32_t backend_pid = 0;       // the BackendKeyData pid the client was given
    std::string client_address;
    std::string role;              // gateway role
    std::string database;
    std::string upstream_user;     // the upstream role its statements run as
    std::string auth_method;
    bool tls = false;
    std::string tls_version;       // e.g. TLSv1.3
    std::string server_name;       // SNI the client sent; empty when none
    std::string upstream;          // the pg_rproxy_upstreams row it was routed to; empty: pg_rproxy.upstream
    std::string server;            // host:port of the upstream's servers, comma separated
    int listen_port = 0;           // the proxy port it connected to
    std::string pinned;            // why it holds its upstream connection now; empty when it does not
    // The audit log's JSON of role, database, client_address, server_name and upstream, made at
    // its first line: the workers' interned identities never change, and every statement of
    // their sessions carries these fields.
    RenderedText audit_fields;
};

}  // namespace rproxy
