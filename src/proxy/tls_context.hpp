// TLS toward clients (OpenSSL 3 through Asio): the server context built from the pg_rproxy.ssl_*
// settings, and what a session reads off its TLS connection afterwards.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <memory>
#include <string>

#include "core/config.hpp"

namespace rproxy {

using TlsContextPtr = std::shared_ptr<boost::asio::ssl::context>;

// nullptr with error set when the certificate, key or CA file cannot be used.
TlsContextPtr make_tls_context(const SecurityConfig& cfg, std::string& error);

// The hash of the server certificate for SCRAM's tls-server-end-point channel binding (RFC 5929:
// the certificate's signature digest, SHA-256 in place of MD5 and SHA-1).
std::string tls_server_end_point(SSL* ssl);
// The server name the client asked for (SNI), empty if none.
std::string tls_server_name(SSL* ssl);
// Whether ALPN settled on "postgresql" (required for direct TLS negotiation).
bool tls_alpn_postgresql(SSL* ssl);
// The common name of a client certificate that verified against pg_rproxy.ssl_ca_file; empty if
// there is none or it did not verify.
std::string tls_verified_peer_cn(SSL* ssl);
std::string tls_version(SSL* ssl);

}  // namespace rproxy
