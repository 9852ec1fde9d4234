// The byte stream of an upstream connection once libpq has set it up: the proxy reads and writes
// it itself, on the plain socket or through libpq's own OpenSSL session (PQsslStruct), with the
// socket watched by Asio. libpq keeps owning the socket and the SSL object (PQfinish frees them).
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>
#include <libpq-fe.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "protocol/input_buffer.hpp"

namespace rproxy {

class ServerTransport {
public:
    explicit ServerTransport(boost::asio::any_io_executor ex) : sock_(ex) {}
    ~ServerTransport() { detach(); }
    ServerTransport(const ServerTransport&) = delete;
    ServerTransport& operator=(const ServerTransport&) = delete;

    // Starts speaking on a CONNECTION_OK connection. "" when it can be taken over, else why not.
    std::string attach(PGconn* pg);
    // The same while the server asks for authentication (auth passthrough): libpq sent the
    // startup packet, and the proxy answers the server from here on.
    std::string attach_for_login(PGconn* pg);
    // Stops watching the socket (before PQfinish, which closes it).
    void detach();
    bool attached() const { return sock_.is_open(); }
    bool tls() const { return ssl_ != nullptr; }

    // Appends at least one byte to in, waiting as long as needed. False on end of stream, error, or
    // cancel().
    boost::asio::awaitable<bool> read(protocol::InputBuffer& in);
    // Reads what is there without waiting: bytes appended (0 when nothing is there); false when the
    // stream ended or failed.
    bool read_now(protocol::InputBuffer& in, std::size_t& got);
    // Writes all of bytes. False when the connection failed or cancel() was called. While the
    // socket takes no more, what the server sends meanwhile is read into drain: a server blocked
    // writing a large result would otherwise never read the rest of what is being sent.
    boost::asio::awaitable<bool> write(std::string_view bytes, protocol::InputBuffer* drain);
    // Writes as much as the socket takes now: how many bytes; -1 on failure.
    long write_now(std::string_view bytes);

    // Wakes a waiting read or write, which then returns false.
    void cancel();
    bool cancelled() const { return cancelled_; }
    // One wait for readability, for an idle connection's watch; the handler gets the error code.
    // A wait, not a read: its completion may be queued while the connection is taken for a
    // statement or dropped, and only a wait leaves no bytes behind in a buffer then.
    template <class Handler>
    void async_wait_readable(Handler&& h) {
        sock_.async_wait(boost::asio::posix::descriptor_base::wait_read, std::forward<Handler>(h));
    }

private:
    std::string take_socket(PGconn* pg);
    enum class Io { Done, WantRead, WantWrite, Failed };
    static constexpr std::size_t kReadChunk = 64 * 1024;
    static char* scratch();
    // Plain sockets wait in an Asio read into this connection's own buffer rather than in our own
    // read and then a wait for readability: Asio re-arms epoll (epoll_ctl) for every wait, while
    // its read tries the socket once and then waits without touching epoll: a statement costs one
    // system call fewer upstream.
    static constexpr std::size_t kWakeChunk = 16 * 1024;
    char* wake_buffer() {
        if (!wake_) wake_.reset(new char[kWakeChunk]);
        return wake_.get();
    }
    Io read_some(protocol::InputBuffer& in, std::size_t& got);
    Io write_some(std::string_view bytes, std::size_t& done);
    boost::asio::awaitable<bool> wait(Io want);

    boost::asio::posix::stream_descriptor sock_;
    SSL* ssl_ = nullptr;
    bool cancelled_ = false;
    std::unique_ptr<char[]> wake_;
};

}  // namespace rproxy
