// One libpq connection to the upstream, driven only through libpq's asynchronous API with its
// socket watched by Asio. The socket belongs to libpq: Asio only borrows it (release, never close).
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>
#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error_fields.hpp"
#include "proxy/session_settings.hpp"

namespace rproxy {

// Keyword/value pairs for PQconnectStartParams, ready to use (host names already resolved).
struct ConnectSpec {
    std::vector<std::string> keywords;
    std::vector<std::string> values;
    std::chrono::milliseconds timeout{10000};
};

struct PGresultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, PGresultDeleter>;

// Copies every diagnostic field of a libpq error result; adds SQLSTATE 08006 when libpq itself
// produced the error (connection lost) and therefore sent none.
ErrorFields error_fields_of(const PGresult* r);

// ReadyForQuery's status byte for the connection's transaction state ('I', 'T', 'E').
char transaction_status_byte(PGconn* pg);

class UpstreamConnection {
public:
    UpstreamConnection(boost::asio::any_io_executor ex, uint64_t generation);
    ~UpstreamConnection();
    UpstreamConnection(const UpstreamConnection&) = delete;
    UpstreamConnection& operator=(const UpstreamConnection&) = delete;

    // Returns "" once connected, otherwise libpq's reason.
    boost::asio::awaitable<std::string> connect(const ConnectSpec& spec);

    // Waits until the socket is readable/writable. False when cancelled (cancel_wait).
    boost::asio::awaitable<bool> wait_readable();
    boost::asio::awaitable<bool> wait_writable();
    void cancel_wait();

    // Sends everything libpq has buffered. False if the connection broke.
    boost::asio::awaitable<bool> flush();

    // Runs an internal statement (settings sync, catalog lookups). rows holds the last row result.
    struct InternalResult {
        std::optional<ErrorFields> error;
        ResultPtr rows;
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
    boost::asio::awaitable<InternalResult> prepare(const std::string& name, const std::string& sql,
                                                   const std::vector<uint32_t>& types);
    boost::asio::awaitable<InternalResult> describe_prepared(const std::string& name);

    // While idle in the pool: notice the server closing the connection (upstream restart).
    // on_input runs after input was consumed (notifications may be queued in libpq).
    void watch_idle(std::function<void()> on_broken, std::function<void()> on_input = nullptr);
    void stop_idle_watch();

    PGconn* pg() const { return conn_; }
    bool healthy() const;
    void mark_broken() { broken_ = true; }
    bool broken() const { return broken_; }
    uint64_t generation() const { return generation_; }
    SessionSettings& applied_settings() { return applied_; }

    // Where NoticeResponses go while a client's statement runs; null discards them.
    void set_notice_sink(std::function<void(const PGresult*)> sink) { notice_sink_ = std::move(sink); }

private:
    boost::asio::awaitable<bool> wait(boost::asio::posix::descriptor_base::wait_type type);
    boost::asio::awaitable<InternalResult> finish_internal(bool sent);
    void bind_socket();
    static void on_notice(void* arg, const PGresult* r);

    boost::asio::any_io_executor ex_;
    boost::asio::posix::stream_descriptor sock_;
    PGconn* conn_ = nullptr;
    uint64_t generation_;
    bool broken_ = false;
    bool idle_watch_ = false;
    SessionSettings applied_;
    std::function<void(const PGresult*)> notice_sink_;
    std::list<std::pair<std::string, std::string>> prepared_;  // (key, name), most recent first
    // Views of the keys in prepared_ (list nodes never move): each statement's text is held once.
    std::unordered_map<std::string_view, std::list<std::pair<std::string, std::string>>::iterator> prepared_index_;
    std::size_t prepared_bytes_ = 0;  // key text in prepared_
    uint64_t prepared_seq_ = 0;
};

}  // namespace rproxy
