#include "proxy/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>

namespace rproxy {

namespace asio = boost::asio;

namespace {

constexpr unsigned char kAlpnPostgresql[] = "postgresql";

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (!e) return "unknown TLS error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

// Clients that offer ALPN must offer "postgresql" (as PostgreSQL 17 requires); without ALPN the
// SSLRequest path still works, the direct path then refuses the connection.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) break;
        if (len == sizeof kAlpnPostgresql - 1 && std::memcmp(in + i + 1, kAlpnPostgresql, len) == 0) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

TlsContextPtr make_tls_context(const SecurityConfig& cfg, std::string& error) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_min_proto_version(native, cfg.ssl_min_protocol_version == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (!cfg.ssl_ciphers.empty() && SSL_CTX_set_cipher_list(native, cfg.ssl_ciphers.c_str()) != 1) {
        error = "pg_rproxy.ssl_ciphers: " + openssl_error();
        return nullptr;
    }
    if (SSL_CTX_use_certificate_chain_file(native, cfg.ssl_cert_file.c_str()) != 1) {
        error = "could not load server certificate file \"" + cfg.ssl_cert_file + "\": " + openssl_error();
        return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(native, cfg.ssl_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(native) != 1) {
        error = "could not load private key file \"" + cfg.ssl_key_file + "\": " + openssl_error();
        return nullptr;
    }
    if (!cfg.ssl_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(native, cfg.ssl_ca_file.c_str(), nullptr) != 1) {
            error = "could not load root certificate file \"" + cfg.ssl_ca_file + "\": " + openssl_error();
            return nullptr;
        }
        // Ask for a client certificate, check it if one comes; the cert method requires one.
        SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.ssl_ca_file.c_str()))
            SSL_CTX_set_client_CA_list(native, names);
    }
    SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
    return ctx;
}

std::string tls_server_end_point(SSL* ssl) {
    X509* cert = SSL_get_certificate(ssl);
    if (!cert) return {};
    int algo = NID_undef;
    if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &algo, nullptr)) return {};
    const EVP_MD* md = (algo == NID_md5 || algo == NID_sha1) ? EVP_sha256() : EVP_get_digestbynid(algo);
    if (!md) return {};
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!X509_digest(cert, md, buf, &len)) return {};
    return std::string(reinterpret_cast<const char*>(buf), len);
}

std::string tls_server_name(SSL* ssl) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    return name ? name : "";
}

bool tls_alpn_postgresql(SSL* ssl) {
    const unsigned char* data = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &data, &len);
    return len == sizeof kAlpnPostgresql - 1 && std::memcmp(data, kAlpnPostgresql, len) == 0;
}

std::string tls_verified_peer_cn(SSL* ssl) {
    X509* peer = SSL_get0_peer_certificate(ssl);
    if (!peer || SSL_get_verify_result(ssl) != X509_V_OK) return {};
    char cn[256] = {0};
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    if (n <= 0 || static_cast<std::size_t>(n) != std::strlen(cn)) return {};  // embedded NUL: refuse
    return cn;
}

std::string tls_version(SSL* ssl) { return SSL_get_version(ssl); }

}  // namespace rproxy
