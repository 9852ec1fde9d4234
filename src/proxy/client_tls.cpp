// TLS toward the client: after an SSLRequest, or at once when the first byte is a TLS handshake
// record (PostgreSQL 17's sslnegotiation=direct, which must agree on ALPN "postgresql").
#include <sys/socket.h>

#include "proxy/client_session.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

namespace rproxy {

asio::awaitable<bool> ClientSession::first_byte_is_tls() {
    boost::system::error_code ec;
    co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return false;
    unsigned char c = 0;
    ssize_t n = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    co_return n == 1 && c == 0x16;  // TLS record type "handshake"; a startup packet starts with its length
}

asio::awaitable<bool> ClientSession::start_tls(bool direct) {
    tls_context_ = worker_.tls_context();
    if (!tls_context_) co_return false;
    tls_ = std::make_unique<asio::ssl::stream<ClientSocket&>>(socket_, *tls_context_);
    boost::system::error_code ec;
    co_await tls_->async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        note_event(ConnEvent::TlsHandshakeFailed, "08P01");
        worker_.host().log(LogLevel::Log, "pg_rproxy: TLS handshake with " + client_address_ + " failed: " + ec.message());
        tls_.reset();
        co_return false;
    }
    SSL* ssl = tls_->native_handle();
    if (direct && !tls_alpn_postgresql(ssl)) {
        // The protocol requires ALPN for direct negotiation: without it a client could be a
        // confused HTTPS client, or a downgrade.
        ErrorFields e = ErrorFields::make("FATAL", "08P01", "received direct SSL connection request without ALPN protocol negotiation extension");
        co_await fatal(e);
        co_return false;
    }
    starting_->shown.server_name = tls_server_name(ssl);
    starting_->shown.tls_version = SSL_get_version(ssl);
    starting_->tls_end_point = tls_server_end_point(ssl);
    co_return true;
}

}  // namespace rproxy
