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
#include "proxy/exchange.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/statement_description.hpp"
#include "proxy/tls_context.hpp"
#include "proxy/told_parameters.hpp"
#include "proxy/upstream_pool.hpp"

namespace rproxy {

class Worker;

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
    // idle_timeouts: after startup, waiting for the next statement (idle_client_timeout or
    // idle_in_transaction_timeout apply; idle_timeout_ tells which fired).
    boost::asio::awaitable<bool> read_more(bool idle_timeouts = false);
    boost::asio::awaitable<std::size_t> read_delivering_notifications(bool deliver,
                                                                      const bool& timed_out,
                                                                      boost::system::error_code& ec);
    // The message returned stays valid until the next call (see protocol::InputBuffer).
    boost::asio::awaitable<std::optional<protocol::FrontendMessage>> next_message();
    // The statement pipeline. Stages, each in its own file:
    //   decode (the message loop in serve) -> judge (stage_judge.cpp) -> cache probe
    //   (stage_cache.cpp) -> acquire (stage_acquire.cpp) -> forward (stage_forward.cpp,
    //   client_session_extended.cpp) -> relay and capture (stage_relay.cpp) -> finish
    //   (stage_finish.cpp).
    boost::asio::awaitable<void> handle_query(const std::string& sql);
    // client_fast_path.cpp: FunctionCall, for the calls that read large objects.
    boost::asio::awaitable<void> handle_function_call(std::string_view body);

    // judge
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
    bool deallocate_locally(const ParsedQuery& parsed, std::string& out);
    std::optional<ErrorFields> track_prepared(const ParsedQuery& parsed);

    // cache probe. extra: what besides the statement changes the bytes (Bind's parameters, formats)
    std::optional<CacheKey> cache_key_for(const std::string& sql, const ParsedQuery& parsed, const Verdict& verdict,
                                          int* ttl_seconds, const std::string& extra);
    // Hit: the stored bytes are appended to out. Claimed: *fill is set, this client fills the entry.
    ProbeResult probe_cache_now(const CacheKey& key, std::string& out, std::optional<uint64_t>* fill);  // one look
    std::size_t capture_limit(const std::optional<CacheKey>& key) const;
    boost::asio::awaitable<ProbeResult> wait_for_fill(const CacheKey& key, std::string& out, std::optional<uint64_t>* fill);
    // The fill this client makes after probe_cache_now() claimed entry id for it.
    std::unique_ptr<Fill> make_fill(const CacheKey& key, uint64_t id, int ttl, const std::string& sql,
                                    const std::shared_ptr<const ParsedQuery>& parsed);
    void finish_fill(Fill& fill);

    // acquire: the connection a statement runs on, with the client's settings: the one this
    // client holds when there is one, else one from the pool; null with failure set when the
    // upstream cannot be had.
    boost::asio::awaitable<ConnectionPtr> acquire(ConnectionPtr held, std::optional<ErrorFields>& failure);
    boost::asio::awaitable<ConnectionPtr> ensure_connection(ConnectionPtr conn, std::optional<ErrorFields>& failure);
    boost::asio::awaitable<std::optional<ErrorFields>> sync_settings(const ConnectionPtr& conn);

    // relay: the upstream's answers to what was forwarded, against expected_, into out_.
    enum class Outcome { Ready, Drained, CopyIn, Lost, ClientGone };
    // Runs until ReadyForQuery (Ready) or, with until_ready false, until nothing more is expected
    // (Drained). out_start: where this exchange's output began in out_ (for a retry).
    boost::asio::awaitable<Outcome> relay(const ConnectionPtr& conn, bool until_ready);
    void emit_local_answers();
    void drop_until_sync(const ConnectionPtr& conn);
    void relay_message(char type, std::string_view body, Fill* fill);
    // COPY FROM STDIN: the client's CopyData, CopyDone or CopyFail go upstream until the copy ends.
    boost::asio::awaitable<bool> pump_copy_in(const ConnectionPtr& conn);
    bool flushed_since_start_ = false;  // output reached the client since the exchange began

    // finish: after ReadyForQuery. The client's own state follows what ran (settings, pinning,
    // LISTEN, DEALLOCATE ALL); the connection goes back to the pool or stays with the client.
    void finish_statement(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded, char status_before,
                          bool session_state, bool& pins);
    void after_deallocate_all(const ParsedQuery& parsed, const ConnectionPtr& conn);
    void after_listen(const ParsedQuery& parsed, const ConnectionPtr& conn);
    // Session-level SET/RESET/set_config that succeeded outside a transaction become the client's
    // own settings (applied wherever it runs next), with ParameterStatus for reported ones. Inside
    // a transaction the client stays pinned instead. Returns whether the statement must pin.
    bool track_settings(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded, char status_before);
    void keep_or_release(ConnectionPtr conn, bool session_state);
    void finish_fills(bool complete);
    // What is still expected is given up (the connection is lost or the client gone).
    void abandon_expected();

    // Extended query protocol (client_session_extended.cpp): messages are forwarded as they come,
    // statement names mapped to the connection's own, until Sync (or Flush) sends them.
    struct ClientStatement {
        std::string sql;
        std::vector<uint32_t> types;
        std::shared_ptr<const ParsedQuery> parsed;
        Verdict verdict;
        std::shared_ptr<const StatementDescription> description;  // known before it runs, or learnt at Parse
        std::shared_ptr<StatementDescription> describing;          // being learnt on the connection
        std::string described_key;
        uint64_t reloads = 0;           // Worker::reloads() when judged and described
        uint64_t settings_version = 0;  // settings_.version() then
    };
    struct ClientPortal {
        std::shared_ptr<ClientStatement> statement;
        // Held back while the proxy may still answer its Execute from the cache: the Bind as
        // received, and whether a Describe of the portal came meanwhile.
        enum class State : uint8_t { Held, Forwarded, Answered } state = State::Held;
        std::string bind_body;
        protocol::BindMessage bind;
        bool describe = false;
        bool may_fill = false;  // forwarded, with bind kept for the cache key
    };
    static const StatementDescription* description_of(const ClientStatement& st);
    boost::asio::awaitable<void> handle_extended(const protocol::FrontendMessage& msg);
    void extended_failed(const std::optional<ErrorFields>& failure);
    boost::asio::awaitable<std::optional<ErrorFields>> on_parse(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_bind(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_describe(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_execute(std::string_view body);
    boost::asio::awaitable<std::optional<ErrorFields>> on_close(std::string_view body);
    boost::asio::awaitable<void> on_sync();
    boost::asio::awaitable<void> on_flush();
    // The connection this batch of extended messages runs on, acquired at the first message that
    // needs the upstream.
    boost::asio::awaitable<ConnectionPtr> batch_connection(std::optional<ErrorFields>& failure);
    // Makes sure st is prepared on conn (a Parse, and a Describe when its description is not
    // known yet, queued ahead); visible: the client waits for a ParseComplete.
    void prepare_on(const ConnectionPtr& conn, const std::shared_ptr<ClientStatement>& st, bool visible,
                    const std::string& client_name, std::string* upstream_name);
    // A held portal goes upstream after all: its Bind (and Describe) are forwarded.
    boost::asio::awaitable<std::optional<ErrorFields>> forward_portal(const std::string& name, ClientPortal& portal);
    // The batch's messages so far are sent with a Flush and their answers relayed, so that the
    // connection can run a statement of the proxy's own, or a long pipeline does not fill both
    // directions' buffers.
    boost::asio::awaitable<bool> drain_batch();
    // After the upstream's ReadyForQuery for a Sync, or when the batch's connection was lost.
    void finish_batch(bool ready);
    void queue_local(std::string bytes);
    void local_answer_done();

    std::unordered_map<std::string, std::shared_ptr<ClientStatement>> statements_;
    std::unordered_map<std::string, ClientPortal> portals_;
    bool discard_until_sync_ = false;
    ExpectedQueue expected_;
    ConnectionPtr batch_conn_;       // the connection of the extended messages since the last Sync
    std::optional<std::string> held_portal_;  // the portal whose Bind is held back
    struct Executed {
        std::shared_ptr<const ParsedQuery> parsed;
        bool session_state;
    };
    std::vector<Executed> batch_executed_;    // statements run in this batch, for finish
    char batch_status_before_ = 'I';
    bool batch_failed_ = false;      // an error in this batch (the server rolls its implicit transaction back)
    std::vector<std::unique_ptr<Fill>> fills_;  // results complete, stored once the transaction is known
    void release_pinned();
    void reject(const ErrorFields& e);
    boost::asio::awaitable<bool> flush();
    // Writes out_ at once when the socket takes it all (the usual case): true when nothing is left
    // for flush(), which would cost a coroutine and an asynchronous write.
    bool write_now();
    boost::asio::awaitable<void> fatal(const ErrorFields& e);
    void watch_client(const ConnectionPtr& conn);
    void stop_watching_client();
    // NotificationResponse for every notification the connection received outside a statement.
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
    std::weak_ptr<ServerConnection> current_conn_;
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
