#include "proxy/server_transport.hpp"

#include <sys/socket.h>

#include <openssl/err.h>

#include <cerrno>

#include "pg/libpq_unread.h"
#include "proxy/io_counters.hpp"

namespace asio = boost::asio;

namespace rproxy {

std::string ServerTransport::attach(PGconn* pg) {
    if (PQstatus(pg) != CONNECTION_OK) return "the connection is not established";
    // libpq consumed every complete message after ReadyForQuery; a partial one would be lost.
    int unread = rproxy_libpq_unread_bytes(pg);
    if (unread != 0)
        return unread < 0 ? "this libpq build cannot be taken over (unexpected connection layout)"
                          : "the upstream sent a message while the connection was being set up";
    return take_socket(pg);
}

std::string ServerTransport::attach_for_login(PGconn* pg) {
    if (PQstatus(pg) != CONNECTION_AWAITING_RESPONSE) return "the connection did not reach authentication";
    int pending = rproxy_libpq_unsent_bytes(pg);
    if (pending != 0)
        return pending < 0 ? "this libpq build cannot be taken over (unexpected connection layout)"
                           : "the startup packet was not sent whole";
    return take_socket(pg);
}

std::string ServerTransport::take_socket(PGconn* pg) {
    // GSS encryption frames traffic in libpq's private buffers: it cannot be taken over (the
    // connect spec turns it off; a service file cannot turn it back on).
    if (PQgssEncInUse(pg)) return "GSSAPI-encrypted upstream connections are not supported";
    if (PQsslInUse(pg)) {
        ssl_ = static_cast<SSL*>(PQsslStruct(pg, "OpenSSL"));
        if (!ssl_) return "the upstream TLS session is not OpenSSL";
    }
    boost::system::error_code ec;
    sock_.assign(PQsocket(pg), ec);  // already non-blocking: libpq set O_NONBLOCK when it connected
    if (ec) return "could not watch the upstream socket: " + ec.message();
    return "";
}

void ServerTransport::detach() {
    if (sock_.is_open()) sock_.release();
    ssl_ = nullptr;
}

void ServerTransport::cancel() {
    cancelled_ = true;
    boost::system::error_code ignored;
    if (sock_.is_open()) sock_.cancel(ignored);
}

// Reads go into one buffer of the worker's (one thread per worker) and only what arrived is
// appended: preparing room in the input buffer would zero 64 KiB per read.
char* ServerTransport::scratch() {
    static char buffer[kReadChunk];
    return buffer;
}

ServerTransport::Io ServerTransport::read_some(protocol::InputBuffer& in, std::size_t& got) {
    got = 0;
    char* room = scratch();
    if (ssl_) {
        ERR_clear_error();
        int n = SSL_read(ssl_, room, static_cast<int>(kReadChunk));
        if (n > 0) {
            in.append(room, static_cast<std::size_t>(n));
            got = static_cast<std::size_t>(n);
            io_counters.upstream_received += got;
            return Io::Done;
        }
        switch (SSL_get_error(ssl_, n)) {
            case SSL_ERROR_WANT_READ: return Io::WantRead;
            case SSL_ERROR_WANT_WRITE: return Io::WantWrite;  // a key update needs our answer
            default: return Io::Failed;  // end of stream included: the server closed it
        }
    }
    ssize_t n = ::recv(sock_.native_handle(), room, kReadChunk, MSG_DONTWAIT);
    if (n > 0) {
        in.append(room, static_cast<std::size_t>(n));
        got = static_cast<std::size_t>(n);
        io_counters.upstream_received += got;
        return Io::Done;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Io::WantRead;
    return Io::Failed;
}

// On TLS a dead socket is not reported here: libpq's BIO swallows write errors (write_failed) and
// claims success. The next read sees the end of the stream instead.
ServerTransport::Io ServerTransport::write_some(std::string_view bytes, std::size_t& done) {
    done = 0;
    if (ssl_) {
        ERR_clear_error();
        // Only SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is set: a retry must pass the same bytes.
        int n = SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 30)));
        if (n > 0) {
            done = static_cast<std::size_t>(n);
            io_counters.upstream_sent += done;
            return Io::Done;
        }
        switch (SSL_get_error(ssl_, n)) {
            case SSL_ERROR_WANT_READ: return Io::WantRead;
            case SSL_ERROR_WANT_WRITE: return Io::WantWrite;
            default: return Io::Failed;
        }
    }
    ssize_t n = ::send(sock_.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
        done = static_cast<std::size_t>(n);
        io_counters.upstream_sent += done;
        return Io::Done;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Io::WantWrite;
    return Io::Failed;
}

asio::awaitable<bool> ServerTransport::wait(Io want) {
    if (cancelled_ || !sock_.is_open()) co_return false;
    boost::system::error_code ec;
    co_await sock_.async_wait(want == Io::WantRead ? asio::posix::descriptor_base::wait_read
                                                   : asio::posix::descriptor_base::wait_write,
                              asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec && !cancelled_;
}

bool ServerTransport::read_now(protocol::InputBuffer& in, std::size_t& got) {
    Io io = read_some(in, got);
    return io != Io::Failed;
}

asio::awaitable<bool> ServerTransport::read(protocol::InputBuffer& in) {
    cancelled_ = false;
    if (!ssl_) {
        boost::system::error_code ec;
        std::size_t n = co_await sock_.async_read_some(asio::buffer(wake_buffer(), kWakeChunk),
                                                       asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;  // end of stream included: the server closed it
        in.append(wake_.get(), n);  // kept even when cancelled meanwhile: the stream stays whole
        io_counters.upstream_received += n;
        if (cancelled_) co_return false;
        // A full buffer: a large result is arriving; one more read takes a larger piece of it at
        // once (one only: the caller decides when to read more, a slow client holds it back).
        std::size_t got = 0;
        if (n == kWakeChunk) read_some(in, got);
        co_return true;
    }
    for (;;) {
        std::size_t got = 0;
        // Decrypted bytes may wait inside OpenSSL (SSL_pending) with the socket quiet: always try
        // the read before waiting for the socket.
        Io io = read_some(in, got);
        if (io == Io::Done) co_return true;
        if (io == Io::Failed) co_return false;
        if (!co_await wait(io)) co_return false;
    }
}

long ServerTransport::write_now(std::string_view bytes) {
    std::size_t total = 0;
    while (total < bytes.size()) {
        std::size_t done = 0;
        Io io = write_some(bytes.substr(total), done);
        if (io == Io::Failed) return -1;
        if (io != Io::Done) break;
        total += done;
    }
    return static_cast<long>(total);
}

asio::awaitable<bool> ServerTransport::write(std::string_view bytes, protocol::InputBuffer* drain) {
    cancelled_ = false;
    std::size_t total = 0;
    while (total < bytes.size()) {
        std::size_t done = 0;
        Io io = write_some(bytes.substr(total), done);
        if (io == Io::Failed) co_return false;
        if (io == Io::Done) {
            total += done;
            continue;
        }
        if (!drain) {
            if (!co_await wait(io)) co_return false;
            continue;
        }
        // Read what the server sent, then wait for room, or for a few milliseconds: by then the
        // server may be blocked writing again, and is freed by the next read.
        std::size_t got = 0;
        if (!read_now(*drain, got)) co_return false;
        if (got > 0) continue;
        asio::steady_timer pause(sock_.get_executor(), std::chrono::milliseconds(5));
        // Shared with the timer's handler, which may run after this wait is over: then it does nothing.
        auto waiting = std::make_shared<bool>(true);
        auto paused = std::make_shared<bool>(false);
        pause.async_wait([this, waiting, paused](boost::system::error_code ec) {
            if (ec || !*waiting) return;
            *paused = true;
            boost::system::error_code ignored;
            if (sock_.is_open()) sock_.cancel(ignored);
        });
        boost::system::error_code ec;
        co_await sock_.async_wait(io == Io::WantRead ? asio::posix::descriptor_base::wait_read
                                                     : asio::posix::descriptor_base::wait_write,
                                  asio::redirect_error(asio::use_awaitable, ec));
        *waiting = false;
        pause.cancel();
        if (cancelled_ || (ec && !*paused)) co_return false;
    }
    co_return true;
}

}  // namespace rproxy
