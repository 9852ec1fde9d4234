#include "proxy/sni_certificates.hpp"

#include <openssl/ssl.h>

namespace rproxy {

namespace {
bool same(const std::vector<ServerCertificate>& a, const std::vector<ServerCertificate>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].server_name != b[i].server_name || a[i].cert_file != b[i].cert_file || a[i].key_file != b[i].key_file)
            return false;
    return true;
}
}  // namespace

std::vector<std::string> SniCertificates::update(const std::vector<ServerCertificate>& certificates,
                                                 const SecurityConfig& base) {
    std::vector<std::string> problems;
    bool base_same = built_ && base.ssl_ciphers == base_.ssl_ciphers && base.ssl_ca_file == base_.ssl_ca_file &&
                     base.ssl_min_protocol_version == base_.ssl_min_protocol_version;
    if (base_same && same(certificates, loaded_)) return problems;
    contexts_.clear();
    for (const auto& c : certificates) {
        SecurityConfig cfg = base;  // the same TLS settings, another certificate
        cfg.ssl_cert_file = c.cert_file;
        cfg.ssl_key_file = c.key_file;
        std::string error;
        TlsContextPtr ctx = make_tls_context(cfg, error);
        if (!ctx) problems.push_back("certificate for server name \"" + c.server_name + "\": " + error);
        contexts_.push_back(Named{c, ctx});
    }
    loaded_ = certificates;
    base_ = base;
    built_ = true;
    return problems;
}

void SniCertificates::attach(const TlsContextPtr& default_context) {
    if (!default_context) return;
    SSL_CTX* native = default_context->native_handle();
    SSL_CTX_set_tlsext_servername_callback(native, on_server_name);
    SSL_CTX_set_tlsext_servername_arg(native, this);
}

int SniCertificates::on_server_name(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<SniCertificates*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || self->contexts_.empty()) return SSL_TLSEXT_ERR_OK;
    const ServerCertificate* chosen = certificate_for(self->loaded_, name);
    if (!chosen) return SSL_TLSEXT_ERR_OK;
    for (const auto& n : self->contexts_)
        if (n.certificate.server_name == chosen->server_name) {
            // The SSL takes its own reference: the context may be rebuilt while it lives.
            if (n.context) SSL_set_SSL_CTX(ssl, n.context->native_handle());
            break;
        }
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace rproxy
