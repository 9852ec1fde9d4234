// Certificates by the server name a TLS client asks for (pg_rproxy_server_certificates): the
// handshake switches to the context of the exact name, else of a matching wildcard, else stays on
// pg_rproxy.ssl_cert_file's. Contexts are built when the table or the TLS settings change; a file
// that cannot be loaded is reported then, and its name gets the default certificate.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/routing.hpp"
#include "proxy/tls_context.hpp"

namespace rproxy {

class SniCertificates {
public:
    // Returns a message per certificate that could not be loaded.
    std::vector<std::string> update(const std::vector<ServerCertificate>& certificates, const SecurityConfig& base);
    // Makes the default context consult this object during handshakes; it must outlive the context's use.
    void attach(const TlsContextPtr& default_context);
    // A reload: the next update() reads the files again (a renewed certificate at the same path).
    void invalidate() { built_ = false; }

private:
    static int on_server_name(SSL* ssl, int* alert, void* arg);

    struct Named {
        ServerCertificate certificate;
        TlsContextPtr context;  // null: it could not be loaded
    };
    std::vector<ServerCertificate> loaded_;  // what contexts_ was built from
    SecurityConfig base_;
    bool built_ = false;
    std::vector<Named> contexts_;
};

}  // namespace rproxy
