// The upstream side of one pooled connection, like PgBouncer's server.c beside client.c. libpq
// establishes it (host lists, target_session_attrs, service and password files, SCRAM, TLS with
// verify-full and client certificates); from CONNECTION_OK on, the proxy speaks protocol 3 on it
// itself through a ServerTransport, and no PGresult is ever made.
//
// It hands the statement pipeline whole messages, keeps what the server reported (transaction
// status from ReadyForQuery, ParameterStatus values, BackendKeyData) and runs the proxy's own
// statements (settings sync, catalog lookups) over the same wire.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>
#include <libpq-fe.h>

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error_fields.hpp"
#include "protocol/backend_decode.hpp"
#include "protocol/input_buffer.hpp"
#include "proxy/connect_spec.hpp"
#include "proxy/message_log.hpp"
#include "proxy/server_transport.hpp"
#include "proxy/session_settings.hpp"

namespace rproxy {

// 08006 with libpq's or the proxy's reason: the upstream connection is gone.
ErrorFields connection_failure(const std::string& why);

class ServerConnection {
public:
    ServerConnection(boost::asio::any_io_executor ex, uint64_t generation);
    ~ServerConnection();
    ServerConnection(const ServerConnection&) = delete;
    ServerConnection& operator=(const ServerConnection&) = delete;

    // libpq connects; then the proxy takes the connection over. "" once ready, otherwise why not.
    // for_login (auth passthrough): taken over once libpq sent the startup packet, before the
    // server's authentication request, which the client answers through the proxy; then
    // finish_login() after the server's ReadyForQuery.
    boost::asio::awaitable<std::string> connect(const ConnectSpec& spec, bool for_login = false);
    void finish_login(int32_t backend_pid, int32_t cancel_key);

    // What to send: frontend messages are appended here, then send() writes them.
    std::string& output() { return out_; }
    boost::asio::awaitable<bool> send();
    // As much as the socket takes now, without a coroutine: true when all of it went (the usual
    // case); false when send() must finish the rest, or the connection broke (send() says so).
    bool send_now();

    // The next whole message from the server, waiting for it; nullopt when the connection failed
    // or the wait was cancelled (cancel_wait). The body stays valid until the next call of next()
    // or next_buffered(). ReadyForQuery, ParameterStatus and fatal errors are noted on the way.
    boost::asio::awaitable<std::optional<protocol::BackendMessage>> next();
    // A message already received, without waiting.
    std::optional<protocol::BackendMessage> next_buffered();
    // The run of whole DataRow messages at the front of what was received, framing included,
    // taken at once (rows counts them); empty when the next message is something else. Valid
    // until the next call of next(), next_buffered() or data_rows().
    std::string_view data_rows(uint64_t& rows);
    void cancel_wait() { transport_.cancel(); }

    // The proxy's own statements. rows: the data rows of the last result, as text.
    struct InternalResult {
        std::optional<ErrorFields> error;
        std::vector<std::vector<std::optional<std::string>>> rows;
    };
    boost::asio::awaitable<InternalResult> run_internal(const std::string& sql,
                                                        const std::vector<std::string>& params);
    // (No defaulted or braced arguments in co_await expressions: GCC 12 mishandles temporaries there.)
    boost::asio::awaitable<InternalResult> run_internal(const std::string& sql) {
        static const std::vector<std::string> none;
        return run_internal(sql, none);
    }

    // Statements prepared on this connection for clients' Parse messages, keyed by parameter types
    // and text (the same statement is prepared once per connection, whoever asks), bounded in
    // count and in bytes of text; the least recently used go first.
    const std::string* prepared_name(const std::string& key);
    // Registers key under a fresh name; returns the names evicted to stay within the bound.
    std::string add_prepared(const std::string& key, std::vector<std::string>* evicted);
    void forget_prepared(const std::string& key);
    void forget_all_prepared();

    // While idle (in the pool, or pinned to a listening client): notice the server closing the
    // connection, and keep the notifications that arrive. on_input runs after each read.
    void watch_idle(std::function<void()> on_broken, std::function<void()> on_input = nullptr);
    void stop_idle_watch();
    // NotificationResponse messages received outside a client's statement, as the server sent them.
    std::string take_notifications() { return std::exchange(notifications_, std::string()); }

    // 'I', 'T' or 'E', from the last ReadyForQuery.
    char transaction_status() const { return status_; }
    // What the server last reported for a ParameterStatus setting; null if never.
    const std::string* parameter(std::string_view name) const;
    // A cancel request for the statement running here (PQcancel blocks: use it off the loop).
    PGcancel* cancel_request() const { return pg_ && !own_cancel_ ? PQgetCancel(pg_) : nullptr; }
    // For a connection whose login the proxy relayed, libpq never saw the BackendKeyData: the
    // CancelRequest is sent from here (blocking: off the loop).
    struct RawCancel {
        sockaddr_storage address;
        socklen_t length = 0;
        int32_t pid = 0, key = 0;
        void send() const;
    };
    std::optional<RawCancel> raw_cancel() const { return own_cancel_; }
    int32_t backend_pid() const { return backend_pid_; }

    bool healthy() const;
    void mark_broken() { broken_ = true; }
    bool broken() const { return broken_; }
    uint64_t generation() const { return generation_; }
    // The ServerPool it belongs to (ServerPool::id).
    uint64_t pool_id() const { return pool_id_; }
    void set_pool_id(uint64_t id) { pool_id_ = id; }
    SessionSettings& applied_settings() { return applied_; }
    // The message log of the session it serves now (null: not logged).
    void tap(MessageLog* log, int32_t session) {
        if (log && !tap_) out_tapped_ = out_.size();  // what was queued before is not announced late
        tap_ = log;
        tap_session_ = session;
    }

private:
    void take_over();
    void tap_output();  // what out_ holds beyond out_tapped_, before it is written
    void observe(const protocol::BackendMessage& m);
    boost::asio::awaitable<bool> wait_connect(PostgresPollingStatusType st);

    boost::asio::any_io_executor ex_;
    ServerTransport transport_;
    PGconn* pg_ = nullptr;
    uint64_t generation_;
    uint64_t pool_id_ = 0;
    bool broken_ = false;
    bool idle_watch_ = false;
    char status_ = 'I';
    int32_t backend_pid_ = 0;
    std::optional<RawCancel> own_cancel_;
    std::vector<std::pair<std::string, std::string>> parameters_;
    protocol::InputBuffer in_;
    std::string out_;
    std::string notifications_;
    SessionSettings applied_;
    std::list<std::pair<std::string, std::string>> prepared_;  // (key, name), most recent first
    // Views of the keys in prepared_ (list nodes never move): each statement's text is held once.
    std::unordered_map<std::string_view, std::list<std::pair<std::string, std::string>>::iterator> prepared_index_;
    std::size_t prepared_bytes_ = 0;  // key text in prepared_
    uint64_t prepared_seq_ = 0;
    MessageLog* tap_ = nullptr;
    int32_t tap_session_ = 0;
    std::size_t out_tapped_ = 0;
};

}  // namespace rproxy
