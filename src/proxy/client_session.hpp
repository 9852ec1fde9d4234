// One client connection: the frontend (this class) and its statement pipeline.
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
#include "proxy/client_io.hpp"
#include "proxy/message_log.hpp"
#include "proxy/session_settings.hpp"
#include "proxy/statement_pipeline.hpp"
#include "proxy/tls_context.hpp"
#include "proxy/parked_clients.hpp"
#include "proxy/told_parameters.hpp"
#include "proxy/upstream.hpp"

namespace rproxy {

class Worker;

// A client's socket, bound to the worker's io_context itself rather than a type-erased executor:
// 32 bytes less per client, and no erased call per operation.
using ClientSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

// The frontend of one client connection, as a coroutine on the worker's loop: I/O, TLS,
// authentication and the message loop. Statements go to its StatementPipeline.
class ClientSession : public std::enable_shared_from_this<ClientSession>, private ClientIo,
                      private ParkedClients::Client {
public:
    ClientSession(Worker& worker, ClientSocket socket);
    ~ClientSession();
    // Runs the session on the worker's loop; at its end it calls Worker::session_ended.
    void start();
    // The worker's sweep: a plain client that has been waiting for its next message since before
    // `epoch` parks (see park()).
    void park_if_waiting_since_before(uint64_t epoch);

    // SIGTERM: an idle client is told 57P01 at once, a busy one after its statement.
    void request_shutdown();
    // Grace period over: 57P01 best-effort, then the connection is torn down.
    void force_close();
    // A CancelRequest with this client's BackendKeyData: cancel its running upstream statement.
    void cancel_statement(int32_t pid, int32_t key);
    // After a reload: whether this session's messages are logged (pg_rproxy.message_log) is
    // decided again.
    void retap();

private:
    // first: startup, then the message loop; otherwise the message loop of a parked session.
    boost::asio::awaitable<void> serve(bool first);
    void spawn(bool first);
    // An idle client holds no coroutine frame, buffer or Asio registration: its message loop has
    // returned and its socket waits in the worker's ParkedClients. Parked right after startup
    // (many clients connect and then wait) and by the worker's sweep after half a second to a
    // second of waiting, so that a busy client never pays for it.
    void park();
    // Between statements, logged in, plain socket, nothing to write, no extended batch under way.
    bool parkable() const;
    void woken() override { resume(true); }
    int parked_fd() const override { return parked_fd_; }
    // Back from parking: the socket is Asio's again and the message loop starts over.
    void resume(bool readable);
    // Ends the wait for the client's next message, parked or not (notifications, timeouts, shutdown).
    void interrupt_wait();
    void finish();  // what the session held is given back; the worker forgets it
    void arm_idle_timer();
    void disarm_idle_timer();
    void end_idle_wait();
    boost::asio::awaitable<bool> startup();
    // client_auth.cpp: the rules, the role's credentials and limits; picks the upstream pool.
    boost::asio::awaitable<bool> authenticate(const protocol::StartupPacket& packet);
    // client_passthrough.cpp: the client's login relayed to an upstream with auth 'passthrough'.
    boost::asio::awaitable<bool> passthrough_login(const std::string& user, const std::string& database,
                                                   auth::Method method, UpstreamPtr upstream, int listen_port);
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
    // idle_timeouts: after startup, waiting for the next statement (idle_client_timeout or
    // idle_in_transaction_timeout apply; idle_end_ tells which fired).
    boost::asio::awaitable<bool> read_more(bool idle_timeouts = false);
    boost::asio::awaitable<std::size_t> read_delivering_notifications(bool deliver,
                                                                      const bool& timed_out,
                                                                      boost::system::error_code& ec);
    // ClientIo, for the pipeline
    std::string& output() override { return out_; }
    bool write_now() override;
    boost::asio::awaitable<bool> flush() override;
    boost::asio::awaitable<std::optional<protocol::FrontendMessage>> next_message() override;
    bool gone() const override { return phase_ == Phase::Gone; }
    void mark_gone() override { advance(Phase::Gone); }
    void watch_while_busy(const std::shared_ptr<ServerConnection>& conn) override;
    void stop_watching() override;
    boost::asio::any_io_executor executor() override { return socket_.get_executor(); }
    void show_pinned(const char* reason) override;
    const SessionInfo& session() const override { return *identity_; }
    int32_t backend_pid() const override { return backend_pid_; }
    ClientIdentity identity() const override;

    boost::asio::awaitable<void> fatal(const ErrorFields& e);
    // A connection attempt's outcome: counted, and written to the audit log.
    void note_event(ConnEvent e, std::string_view sqlstate);
    void watch_notifications();

    // client_tap.cpp: the message log's taps. Until the session is routed its lines are held
    // (the upstream decides whether it is logged); then written, or dropped.
    void tap_start();
    void tap_routed(const std::string& upstream);
    void tap_finish();
    void tap_input(const protocol::FrontendMessage& msg);
    void tap_output();  // what out_ holds beyond out_tapped_, before it is written
    std::string* tap_hold() { return starting_ && !starting_->tap_routed ? &starting_->tap_held : nullptr; }

    Worker& worker_;
    ClientSocket socket_;
    TlsContextPtr tls_context_;  // kept while the session uses it, across reloads
    std::unique_ptr<boost::asio::ssl::stream<ClientSocket&>> tls_;
    std::string client_address_;
    // What only startup needs, freed once the session is published: an idle client is small.
    struct Starting {
        SessionInfo shown;          // for the sessions view, completed as startup goes on (SNI, TLS version)
        std::string tls_end_point;  // for SCRAM-SHA-256-PLUS
        std::shared_ptr<boost::asio::steady_timer> auth_timer;  // authentication_timeout
        std::string tap_held;     // message log lines of the session before it was routed
        bool tap_routed = false;
        std::string tap_upstream;  // the upstream it was routed to
    };
    std::unique_ptr<Starting> starting_ = std::make_unique<Starting>();
    int session_handle_ = -1;
    std::shared_ptr<const SessionInfo> identity_;  // interned by the worker: an idle client holds a pointer
    bool client_claimed_ = false;
    uint32_t role_claimed_ = 0;   // the role whose connection count this session holds
    std::unique_ptr<protocol::InputBuffer> input_ = std::make_unique<protocol::InputBuffer>();  // none while parked
    std::string out_;
    // Where the client's connection is in its life; it only moves forward.
    enum class Phase : uint8_t {
        Startup,   // SSL negotiation and authentication
        Ready,     // authenticated: statements are served
        Draining,  // shutdown requested: an idle client is told 57P01 at once, a busy one after its statement
        Gone,      // disconnected or closed: nothing more is read or written
    };
    Phase phase_ = Phase::Startup;
    void advance(Phase p) {
        if (p > phase_) phase_ = p;
    }
    bool authenticated() const { return phase_ != Phase::Startup; }
    bool draining() const { return phase_ >= Phase::Draining; }
    bool idle_ = false;  // waiting for the client's next message
    bool watching_ = false;
    bool socket_drained_ = false;  // the last read found the socket empty, and nothing was seen since
    bool watching_notifications_ = false;
    bool notifications_ready_ = false;  // relayed into out_ while idle, for read_more to flush
    int32_t backend_pid_ = 0;
    int32_t backend_key_ = 0;
    MessageLog* tap_ = nullptr;    // not null: this session's messages are logged
    std::size_t out_tapped_ = 0;   // the front of out_ that was logged (written in part)
    enum class IdleEnd : uint8_t { None, Session, Transaction };  // which idle timeout ended the session
    IdleEnd idle_end_ = IdleEnd::None;
    // idle_client_timeout / idle_in_transaction_timeout, made once and kept: it runs on while the
    // session is parked. generation tells a stale expiry from the current one.
    struct IdleTimer {
        explicit IdleTimer(const boost::asio::any_io_executor& ex) : timer(ex) {}
        boost::asio::steady_timer timer;
        uint32_t generation = 0;
        bool armed = false;
        bool fired = false;
        bool in_transaction = false;
    };
    std::unique_ptr<IdleTimer> idle_timer_;
    friend class Worker;
    std::size_t worker_index_ = 0;  // where Worker::sessions_ holds it
    int parked_fd_ = -1;            // the socket, while parked: Asio's socket_ is closed meanwhile
    bool v6_ = false;               // the socket's protocol, to give it back to Asio
    uint64_t wait_epoch_ = 0;       // the sweep's epoch when the message loop's wait began; 0: not waiting
    bool park_at_wait_ = false;     // set by startup: the first wait parks at once
    bool between_statements_ = false;  // the message loop waits for the next message: a wait that may park
    bool park_requested_ = false;   // the sweep cancelled the wait to park
    bool parking_ = false;          // the message loop is returning to park
    bool resumed_idle_ = false;     // the wait goes on after parking: its timer is already armed
    StatementPipeline pipeline_;  // last: it refers to out_
};

}  // namespace rproxy
