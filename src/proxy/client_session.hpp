// One client connection, as a coroutine on the worker's loop: startup, then statements one at a
// time, each classified by the host, forwarded over a pooled upstream connection and relayed back.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <memory>
#include <optional>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>
#include <string>
#include <string_view>
#include <functional>

#include "auth/auth_rules.hpp"
#include "auth/auth_snapshot.hpp"
#include "core/cache_types.hpp"
#include "core/connection_events.hpp"
#include "core/error_fields.hpp"
#include "core/session_info.hpp"
#include "core/statement_facts.hpp"
#include "core/verdict.hpp"
#include "protocol/extended_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/input_buffer.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/tls_context.hpp"
#include "proxy/told_parameters.hpp"
#include "proxy/upstream_pool.hpp"

namespace rproxy {

class Worker;
class ResultRelay;

class ClientSession : public std::enable_shared_from_this<ClientSession> {
public:
    ClientSession(Worker& worker, boost::asio::ip::tcp::socket socket);
    boost::asio::awaitable<void> run();

    // SIGTERM: an idle client is told 57P01 at once, a busy one after its statement.
    void request_shutdown();
    // Grace period over: 57P01 best-effort, then the connection is torn down.
    void force_close();
    // A CancelRequest with this client's BackendKeyData: cancel its running upstream statement.
    void cancel_statement(int32_t key);
    void cancel_upstream(const ConnectionPtr& conn);

private:
    enum class Outcome { Done, Retry, ClientGone };

    boost::asio::awaitable<void> serve();
    boost::asio::awaitable<bool> startup();
    // client_auth.cpp: the rules, the role's credentials and limits; picks the upstream pool.
    boost::asio::awaitable<bool> authenticate(const protocol::StartupPacket& packet);
    boost::asio::awaitable<std::optional<std::string>> read_password_message();
    boost::asio::awaitable<int> check_credentials(auth::Method method, const RoleAuthInfo& role,
                                                  const std::optional<std::string>& secret, const std::string& user,
                                                  const std::string& where);
    boost::asio::awaitable<bool> refuse(ConnEvent event, const ErrorFields& e, bool delay);
    boost::asio::awaitable<bool> admit();  // rate limit and max_client_connections, before anything is read
    boost::asio::awaitable<int> scram_exchange(const std::optional<std::string>& secret, const std::string& user);
    // client_tls.cpp: the handshake (after SSLRequest, or at once for direct TLS negotiation).
    boost::asio::awaitable<bool> start_tls(bool direct);
    boost::asio::awaitable<bool> first_byte_is_tls();
    void arm_authentication_timeout();
    // The client stream, plain or TLS.
    // Appends what a plain client socket holds to input_ without waiting (would_block: nothing).
    std::size_t read_available(boost::system::error_code& ec);
    boost::asio::awaitable<void> write_all(boost::asio::const_buffer buf, boost::system::error_code& ec);
    UpstreamPool& pool() { return *pool_; }
    // The connection a statement runs on: conn when there is one, else one from the pool; null
    // with failure set when the upstream cannot be had.
    boost::asio::awaitable<ConnectionPtr> ensure_connection(ConnectionPtr conn, std::optional<ErrorFields>& failure);
    // idle_timeouts: after startup, waiting for the next statement (idle_client_timeout or
    // idle_in_transaction_timeout apply; idle_timeout_ tells which fired).
    boost::asio::awaitable<bool> read_more(bool idle_timeouts = false);
    boost::asio::awaitable<std::size_t> read_delivering_notifications(bool deliver,
                                                                      const bool& timed_out,
                                                                      boost::system::error_code& ec);
    // The message returned stays valid until the next call (see protocol::InputBuffer).
    boost::asio::awaitable<std::optional<protocol::FrontendMessage>> next_message();
    boost::asio::awaitable<void> handle_query(const std::string& sql);
    // client_fast_path.cpp: FunctionCall, for the calls that read large objects.
    boost::asio::awaitable<void> handle_function_call(std::string_view body);
    boost::asio::awaitable<Verdict> judge(const ParsedQuery& parsed, ConnectionPtr& conn,
                                          std::optional<ErrorFields>& failure);
    Verdict judge_known(const ParsedQuery& parsed);  // pending_functions: the upstream must be asked
    // judge_known() remembered per statement until the next reload; null when the upstream must be asked.
    std::shared_ptr<const Verdict> known_verdict(const std::string& sql, const std::shared_ptr<const ParsedQuery>& parsed);
    Verdict finish_judgement(Verdict verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure);
    // Rejections are counted and answered, EXECUTE checked against this client's PREPAREs.
    void check_judgement(const Verdict& verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure);
    std::shared_ptr<const ParsedQuery> parse(const std::string& sql);
    bool answer_locally(const ParsedQuery& parsed);
    bool deallocate_locally(const ParsedQuery& parsed);
    void after_deallocate_all(const ParsedQuery& parsed, const ConnectionPtr& conn);
    // After a statement ran: relays notifications it brought, and a LISTEN starts idle delivery.
    void after_listen(const ParsedQuery& parsed, const ConnectionPtr& conn);
    // Session-level SET/RESET/set_config that succeeded outside a transaction become the client's
    // own settings (applied wherever it runs next), with ParameterStatus for reported ones. Inside
    // a transaction the client stays pinned instead. Returns whether the statement must pin.
    bool track_settings(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded, char status_before);
    // extra: what besides the statement changes the bytes (extended protocol: parameters, formats)
    std::optional<CacheKey> cache_key_for(const std::string& sql, const ParsedQuery& parsed, const Verdict& verdict,
                                          int* ttl_seconds, const std::string& extra);
    // Hit: the stored bytes are appended to out_. Claimed: *fill is set, this client fills the entry.
    ProbeResult probe_cache_now(const CacheKey& key, std::optional<uint64_t>* fill);  // one look, no waiting
    std::size_t capture_limit(const std::optional<CacheKey>& key) const;
    boost::asio::awaitable<ProbeResult> wait_for_fill(const CacheKey& key, std::optional<uint64_t>* fill);
    struct Capture;
    void finish_fill(const CacheKey& key, uint64_t fill, bool complete, const Capture& capture, int ttl,
                     const std::string& sql, const ParsedQuery& parsed);
    std::optional<ErrorFields> track_prepared(const ParsedQuery& parsed);
    struct Capture {
        std::string bytes;
        std::size_t limit = 0;
        bool overflowed = false;
        bool error = false;
        uint64_t rows = 0;
    };
    // How a statement is sent upstream (PQsendQuery, PQsendQueryPrepared) and whether its rows
    // come with a RowDescription (simple protocol) or without (extended Execute).
    struct Request {
        std::function<int(PGconn*)> send;
        bool describe_rows = true;
        std::string* buffer = nullptr;  // collect the messages here instead of streaming them
        bool* saw_error = nullptr;      // set when the upstream answered with an error
        const std::vector<uint32_t>* binary_types = nullptr;  // see ResultRelay::encode_binary
        uint32_t* conversion_failed = nullptr;
    };
    boost::asio::awaitable<Outcome> run_on(const ConnectionPtr& conn, const Request& request, Capture* capture);
    boost::asio::awaitable<Outcome> relay_copy_out(const ConnectionPtr& conn, ResultRelay& relay);
    void keep_or_release(ConnectionPtr conn, bool session_state);

    // Extended query protocol (client_session_extended.cpp)
    struct ClientStatement {
        std::string sql;
        std::vector<uint32_t> types;
        std::shared_ptr<const ParsedQuery> parsed;
        Verdict verdict;
        std::shared_ptr<PGresult> description;  // PQdescribePrepared, taken at Parse
        uint64_t reloads = 0;            // Worker::reloads() when judged and described
        uint64_t settings_version = 0;   // settings_.version() then
    };
    struct ClientPortal {
        std::shared_ptr<ClientStatement> statement;
        protocol::BindMessage bind;
        bool started = false;
        std::string pending;  // rows (and the final message) fetched but not yet sent
        std::size_t pending_pos = 0;
    };
    boost::asio::awaitable<void> handle_extended(const protocol::FrontendMessage& msg);
    // Bind, Describe and Close never wait: answered without a coroutine.
    void handle_extended_now(const protocol::FrontendMessage& msg);
    void extended_failed(const std::optional<ErrorFields>& failure);
    // The unnamed statement parsed again with the same text and types (what most drivers send
    // before every execution): answered from the statement already judged and described.
    bool parse_again_now(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_parse(std::string_view body);
    std::optional<ErrorFields> on_bind(std::string_view body);
    std::optional<ErrorFields> on_describe(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_execute(std::string_view body);
    std::optional<ErrorFields> on_close(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> ensure_prepared(const ConnectionPtr& conn,
                                                                       const ClientStatement& st, std::string* name);
    void send_portal_rows(ClientPortal& portal, int32_t max_rows);

    std::unordered_map<std::string, std::shared_ptr<ClientStatement>> statements_;
    std::unordered_map<std::string, ClientPortal> portals_;
    bool discard_until_sync_ = false;
    void release_pinned();
    void reject(const ErrorFields& e);
    boost::asio::awaitable<std::optional<ErrorFields>> sync_settings(const ConnectionPtr& conn);
    boost::asio::awaitable<bool> flush();
    // Writes out_ at once when the socket takes it all (the usual case): true when nothing is left
    // for flush(), which would cost a coroutine and an asynchronous write.
    bool write_now();
    boost::asio::awaitable<void> fatal(const ErrorFields& e);
    void watch_client(const ConnectionPtr& conn);
    void stop_watching_client();
    // NotificationResponse for every notification libpq has queued on the pinned connection.
    bool relay_notifications(const ConnectionPtr& conn);
    void watch_notifications();

    Worker& worker_;
    boost::asio::ip::tcp::socket socket_;
    TlsContextPtr tls_context_;  // kept while the session uses it, across reloads
    std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
    std::string client_address_;
    std::string server_name_;    // SNI of a TLS client
    std::string tls_version_;
    // For the sessions view, completed as startup goes on and freed once published.
    std::unique_ptr<SessionInfo> shown_ = std::make_unique<SessionInfo>();
    int session_handle_ = -1;
    std::string tls_end_point_;  // for SCRAM-SHA-256-PLUS
    bool channel_bound_ = false;
    bool client_claimed_ = false;
    uint32_t role_claimed_ = 0;   // the role whose connection count this session holds
    bool authenticated_ = false;
    std::shared_ptr<boost::asio::steady_timer> auth_timer_;
    UpstreamPool* pool_;
    protocol::InputBuffer input_;
    std::string out_;
    SessionSettings settings_;
    SessionSettings startup_settings_;  // what RESET ALL returns to
    // cache_key_prefix() of the settings and upstream it was computed for
    std::string key_prefix_;
    uint64_t key_prefix_version_ = 0;
    uint64_t key_prefix_reloads_ = 0;
    const std::string& key_prefix();
    ToldParameters told_;  // the ParameterStatus values this client has been sent
    std::weak_ptr<UpstreamConnection> current_conn_;
    // The client's own upstream connection while it is in a transaction or has changed session
    // state (SET, PREPARE, WITH HOLD cursors, LISTEN); a connection that carried session state is
    // closed, never pooled again, when the client leaves.
    ConnectionPtr pinned_;
    bool session_dirty_ = false;
    std::set<std::string> prepared_;  // statements this client PREPAREd (allowed by the firewall)
    char tx_status_ = 'I';
    bool idle_ = false;
    bool shutdown_requested_ = false;
    bool client_gone_ = false;
    bool watching_ = false;
    bool watching_notifications_ = false;
    bool notifications_ready_ = false;  // relayed into out_ while idle, for read_more to flush
    bool listening_ = false;
    int32_t backend_pid_ = 0;
    int32_t backend_key_ = 0;
    std::optional<ErrorFields> idle_timeout_;
};

}  // namespace rproxy
