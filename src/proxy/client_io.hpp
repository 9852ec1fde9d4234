// What the statement pipeline needs of its client's connection: the output buffer and its
// writes, the next message (during COPY FROM STDIN), and a watch that notices the client leaving
// while its statement runs upstream.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/session_info.hpp"
#include "protocol/frontend_messages.hpp"

namespace rproxy {

class ServerConnection;

// Who a logged-in client is, as the statement hook's context tells it; empty before login.
struct ClientIdentity {
    std::string_view role;
    std::string_view database;
    std::string_view server_name;  // TLS SNI; empty when none
    std::string_view client_address;
};

class ClientIo {
public:
    virtual ~ClientIo() = default;
    // Messages for the client are appended here.
    virtual std::string& output() = 0;
    // Writes the output at once when the socket takes it all (the usual case): true when nothing
    // is left for flush(), which would cost a coroutine and an asynchronous write.
    virtual bool write_now() = 0;
    // False when the client is gone.
    virtual boost::asio::awaitable<bool> flush() = 0;
    // The message returned stays valid until the next call (see protocol::InputBuffer).
    virtual boost::asio::awaitable<std::optional<protocol::FrontendMessage>> next_message() = 0;
    virtual bool gone() const = 0;
    virtual void mark_gone() = 0;
    // While a statement runs upstream: a client that disconnects cancels the wait on conn.
    virtual void watch_while_busy(const std::shared_ptr<ServerConnection>& conn) = 0;
    virtual void stop_watching() = 0;
    virtual boost::asio::any_io_executor executor() = 0;
    // Why the client now holds its upstream connection ("" when it does not), for pg_rproxy_sessions.
    virtual void show_pinned(const char* reason) = 0;
    // Who the client is (role, database, address, server name, upstream), for the observers.
    // Shared with the worker's other clients of the same identity; backend_pid is the client's own.
    virtual const SessionInfo& session() const = 0;
    virtual int32_t backend_pid() const = 0;  // the client's BackendKeyData pid: its session id
    virtual ClientIdentity identity() const = 0;
};

}  // namespace rproxy
