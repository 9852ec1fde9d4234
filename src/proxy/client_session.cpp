#include "proxy/client_session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <tuple>

#include "protocol/backend_messages.hpp"
#include "protocol/message_writer.hpp"
#include "proxy/cache_key.hpp"
#include "proxy/result_relay.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

namespace rproxy {

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kKeepBuffer = 256 * 1024;  // larger buffers are freed once empty
constexpr std::size_t kFlushThreshold = 64 * 1024;

// What a PostgreSQL 15 server reports at startup (GUC_REPORT settings), in its order.
constexpr const char* kReportedParameters[] = {
    "application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
    "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding",
    "server_version", "session_authorization", "standard_conforming_strings", "TimeZone",
};

ErrorFields terminating() {
    return ErrorFields::make("FATAL", "57P01", "terminating connection due to administrator command");
}

}  // namespace

ClientSession::ClientSession(Worker& worker, asio::ip::tcp::socket socket)
    : worker_(worker), socket_(std::move(socket)), pool_(&worker.pool()) {
    boost::system::error_code ec;
    auto peer = socket_.remote_endpoint(ec);
    if (!ec) {
        auto addr = peer.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
        client_address_ = addr.to_string();
    }
    socket_.non_blocking(true, ec);  // read_some() reads only once the socket is readable
}

std::size_t ClientSession::read_available(boost::system::error_code& ec) {
    asio::mutable_buffer shared = worker_.read_buffer();
    std::size_t n = socket_.read_some(shared, ec);  // never blocks: would_block when nothing is there
    if (!ec) input_.append(static_cast<const char*>(shared.data()), n);
    return n;
}

asio::awaitable<void> ClientSession::write_all(asio::const_buffer buf, boost::system::error_code& ec) {
    if (tls_) co_await asio::async_write(*tls_, buf, asio::redirect_error(asio::use_awaitable, ec));
    else co_await asio::async_write(socket_, buf, asio::redirect_error(asio::use_awaitable, ec));
}

void ClientSession::request_shutdown() {
    shutdown_requested_ = true;
    boost::system::error_code ignored;
    if (idle_) socket_.cancel(ignored);
}

void ClientSession::force_close() {
    shutdown_requested_ = true;
    client_gone_ = true;
    if (!socket_.is_open()) return;
    std::string msg;
    protocol::append_error(msg, terminating());
    if (!tls_) ::send(socket_.native_handle(), msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (auto c = current_conn_.lock()) c->cancel_wait();
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.cancel(ignored);
}

bool ClientSession::relay_notifications(const ConnectionPtr& conn) {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn->pg())) {
        protocol::append_notification(out_, n->be_pid, n->relname, n->extra ? n->extra : "");
        PQfreemem(n);
        any = true;
    }
    return any;
}

void ClientSession::after_listen(const ParsedQuery& parsed, const ConnectionPtr& conn) {
    relay_notifications(conn);
    for (const auto& st : parsed.statements)
        if (st.kind == "LISTEN") listening_ = true;
}

// While a listening client waits for its next message, its pinned upstream connection is watched
// too: notifications go out as they arrive, as the server would send them to an idle session.
void ClientSession::watch_notifications() {
    if (!listening_ || !pinned_ || watching_notifications_) return;
    watching_notifications_ = true;
    std::weak_ptr<ClientSession> weak = shared_from_this();
    ConnectionPtr conn = pinned_;
    conn->watch_idle([weak, conn] {  // the connection broke: the next statement reports it
        if (auto self = weak.lock()) self->watching_notifications_ = false;
    }, [weak, conn] {
        auto self = weak.lock();
        if (!self || self->client_gone_ || !self->relay_notifications(conn)) return;
        // read_more writes them with flush(), so a notification never interleaves with another write.
        self->notifications_ready_ = true;
        boost::system::error_code ignored;
        self->socket_.cancel(ignored);
    });
}

// Notifications that arrive while the client is idle cancel the read; they are written here, with
// flush(), so that they never interleave with another write, and the read starts again.
asio::awaitable<std::size_t> ClientSession::read_delivering_notifications(bool deliver,
                                                                          const bool& timed_out,
                                                                          boost::system::error_code& ec) {
    for (;;) {
        // libpq may already hold notifications it read together with an earlier result; the
        // socket will not turn readable for them.
        if (deliver && listening_ && pinned_ && relay_notifications(pinned_)) notifications_ready_ = true;
        if (notifications_ready_) {
            notifications_ready_ = false;
            bool sent = co_await flush();
            if (!sent) co_return 0;
            continue;  // more may have come while writing
        }
        if (deliver) watch_notifications();
        std::size_t n = 0;
        if (tls_) {
            // OpenSSL needs a buffer for the whole wait; TLS sessions carry their own anyway.
            char* room = input_.prepare(kReadChunk);
            n = co_await tls_->async_read_some(asio::buffer(room, kReadChunk),
                                               asio::redirect_error(asio::use_awaitable, ec));
            input_.commit(n);
        } else {
            // Plain sockets are read only once readable, into the worker's one buffer: an idle
            // client holds no read buffer of its own.
            for (;;) {
                n = read_available(ec);
                if (ec != asio::error::would_block && ec != asio::error::try_again) break;
                ec.clear();
                co_await socket_.async_wait(asio::ip::tcp::socket::wait_read,
                                            asio::redirect_error(asio::use_awaitable, ec));
                if (ec) break;
            }
        }
        if (!notifications_ready_) co_return n;
        if (n > 0 || ec != asio::error::operation_aborted || timed_out || shutdown_requested_) {
            notifications_ready_ = false;
            if (!write_now()) co_await flush();
            co_return n;
        }
        ec.clear();  // the read was cancelled only to deliver them
    }
}

asio::awaitable<bool> ClientSession::read_more(bool idle_timeouts) {
    boost::system::error_code ec;
    idle_ = true;
    const UpstreamConfig& cfg = pool().config();
    bool in_transaction = tx_status_ != 'I';
    std::chrono::milliseconds limit = in_transaction ? cfg.idle_in_transaction_timeout : cfg.idle_client_timeout;
    std::optional<asio::steady_timer> timer;
    static const bool kNeverFired = false;
    std::shared_ptr<bool> fired;  // only when there is a timer: nothing allocated per statement otherwise
    if (idle_timeouts && limit.count() > 0) {
        fired = std::make_shared<bool>(false);
        timer.emplace(socket_.get_executor(), limit);
        timer->async_wait([this, fired](boost::system::error_code e) {
            if (e) return;
            *fired = true;
            boost::system::error_code ignored;
            socket_.cancel(ignored);
        });
    }
    const bool& timed_out = fired ? *fired : kNeverFired;
    std::size_t n = co_await read_delivering_notifications(idle_timeouts, timed_out, ec);
    if (timer) timer->cancel();
    if (watching_notifications_ && pinned_) {
        pinned_->stop_idle_watch();
        watching_notifications_ = false;
    }
    idle_ = false;
    if (timed_out) {
        idle_timeout_ = in_transaction
            ? ErrorFields::make("FATAL", "25P03", "terminating connection due to idle-in-transaction timeout")
            : ErrorFields::make("FATAL", "57P05", "terminating connection due to idle-session timeout");
        co_return false;
    }
    co_return !ec && n > 0 && !client_gone_;
}

bool ClientSession::write_now() {
    if (out_.empty() || client_gone_) return true;
    if (tls_) return false;
    std::size_t done = 0;
    while (done < out_.size()) {
        boost::system::error_code ec;
        std::size_t n = socket_.write_some(asio::buffer(out_.data() + done, out_.size() - done), ec);  // never blocks
        if (ec == asio::error::would_block || ec == asio::error::try_again) break;
        if (ec) {
            client_gone_ = true;
            out_.clear();
            return true;
        }
        done += n;
    }
    if (done == out_.size()) {
        if (out_.capacity() > kKeepBuffer) std::string().swap(out_);
        else out_.clear();
        return true;
    }
    out_.erase(0, done);
    return false;
}

// A notification relayed while the write is under way is appended to out_: it goes out in the
// next round, never into the buffer being written.
asio::awaitable<bool> ClientSession::flush() {
    std::string sending;
    while (!out_.empty() && !client_gone_) {
        sending.swap(out_);
        boost::system::error_code ec;
        co_await write_all(asio::buffer(sending), ec);
        if (ec) client_gone_ = true;
        sending.clear();
        // keep the buffer's capacity for the next statement, unless a big result made it large
        if (out_.empty() && sending.capacity() <= kKeepBuffer) out_.swap(sending);
    }
    if (client_gone_) out_.clear();
    co_return !client_gone_;
}

asio::awaitable<void> ClientSession::fatal(const ErrorFields& e) {
    ErrorFields f = e;
    for (auto& [code, value] : f.fields)
        if (code == 'S' || code == 'V') value = "FATAL";
    protocol::append_error(out_, f);
    if (!write_now()) co_await flush();
}

asio::awaitable<std::optional<protocol::FrontendMessage>> ClientSession::next_message() {
    input_.release();  // the previous message is handled; a large one is not kept while idle
    for (;;) {
        if (auto msg = protocol::take_message(input_, worker_.limits().max_message_size)) co_return msg;
        if (shutdown_requested_ || !co_await read_more(true)) co_return std::nullopt;
    }
}

asio::awaitable<void> ClientSession::run() {
    auto self = shared_from_this();
    co_await serve();
    release_pinned();
    if (auth_timer_) auth_timer_->cancel();
    if (client_claimed_) worker_.auth_catalog().release_client();
    if (role_claimed_) worker_.auth_catalog().release_role(role_claimed_);
    if (backend_pid_) worker_.forget_backend_key(backend_pid_);
    if (session_handle_ >= 0) worker_.stats().session_ended(session_handle_);
}

void ClientSession::cancel_statement(int32_t key) {
    if (key != backend_key_) return;
    auto conn = current_conn_.lock();
    if (conn) cancel_upstream(conn);  // nothing running: like the server, a late cancel does nothing
}

// PQcancel blocks (it connects to the server): it runs on the helper thread, never on the loop.
void ClientSession::cancel_upstream(const ConnectionPtr& conn) {
    if (PGcancel* cancel = PQgetCancel(conn->pg())) {
        worker_.helper().submit([cancel] {
            char errbuf[256];
            PQcancel(cancel, errbuf, sizeof errbuf);
            PQfreeCancel(cancel);
        });
    }
}

asio::awaitable<void> ClientSession::serve() {
    std::optional<ErrorFields> failure;
    try {
        if (!co_await startup()) co_return;
        for (;;) {
            if (shutdown_requested_) {
                failure = terminating();
                break;
            }
            auto msg = co_await next_message();
            if (!msg) {
                if (shutdown_requested_ && !client_gone_) failure = terminating();
                else if (idle_timeout_) failure = idle_timeout_;
                break;
            }
            switch (msg->type) {
                case 'Q': {
                    std::string sql(protocol::decode_query(msg->body));
                    input_.release();  // a large statement is not held twice while it runs
                    co_await handle_query(sql);
                    if (client_gone_) co_return;
                    break;
                }
                case 'X':
                    co_return;
                case 'S':
                    // End of an extended-protocol batch: errors stop being skipped; outside a
                    // transaction its portals end with it, as the server's implicit transaction does.
                    discard_until_sync_ = false;
                    if (tx_status_ == 'I') portals_.clear();
                    protocol::append_ready_for_query(out_, tx_status_);
                    if (!write_now()) co_await flush();
                    break;
                case 'H':
                    if (!write_now()) co_await flush();
                    break;
                case 'd': case 'c': case 'f':
                    break;  // copy messages outside COPY are ignored, as PostgreSQL does
                case 'F':  // fast-path function call: judged by function and arguments
                    if (discard_until_sync_) break;  // skipped up to Sync, as the server does
                    co_await handle_function_call(msg->body);
                    if (client_gone_) co_return;
                    break;
                case 'B': case 'D': case 'C':
                    handle_extended_now(*msg);
                    if (out_.size() >= kFlushThreshold && !write_now()) co_await flush();
                    break;
                case 'P':
                    if (parse_again_now(msg->body)) break;
                    co_await handle_extended(*msg);
                    if (client_gone_) co_return;
                    break;
                case 'E':
                    co_await handle_extended(*msg);
                    if (client_gone_) co_return;
                    break;
                default:
                    failure = ErrorFields::make("FATAL", "08P01", std::string("unexpected message type '") + msg->type + "'");
                    break;
            }
            if (failure) break;
        }
    } catch (const protocol::ProtocolError& e) {
        failure = ErrorFields::make("FATAL", e.sqlstate(), e.what());
    } catch (const std::exception& e) {
        worker_.host().log(LogLevel::Warning, std::string("pg_rproxy: client session failed: ") + e.what());
        failure = ErrorFields::make("FATAL", "XX000", std::string("internal error in pg_rproxy: ") + e.what());
    }
    // Bad input ends only this connection, with the reason when the socket still takes it.
    if (failure) co_await fatal(*failure);
}

asio::awaitable<bool> ClientSession::startup() {
    if (!co_await admit()) co_return false;
    arm_authentication_timeout();
    bool tls_offered = worker_.tls_context() != nullptr;
    bool direct_tls = false;
    if (tls_offered) direct_tls = co_await first_byte_is_tls();
    if (direct_tls) {
        bool started = co_await start_tls(true);
        if (!started) co_return false;
    }
    protocol::StartupPacket packet;
    for (;;) {
        std::size_t used = 0;
        auto p = protocol::decode_startup_packet(input_.unread(), used);
        if (!p) {
            if (!co_await read_more()) co_return false;
            continue;
        }
        input_.take(used);  // the packet was decoded into owned strings
        if (p->kind == protocol::StartupPacket::Kind::SslRequest ||
            p->kind == protocol::StartupPacket::Kind::GssEncRequest) {
            if (!input_.empty())
                throw protocol::ProtocolError("08P01", "received unencrypted data after SSL request");
            if (tls_) throw protocol::ProtocolError("08P01", "SSL request on an encrypted connection");
            bool tls = p->kind == protocol::StartupPacket::Kind::SslRequest && tls_offered;
            out_.push_back(tls ? 'S' : 'N');
            if (!co_await flush()) co_return false;
            if (tls) {
                bool started = co_await start_tls(false);
                if (!started) co_return false;
            }
            continue;
        }
        if (p->kind == protocol::StartupPacket::Kind::CancelRequest) {
            worker_.cancel(p->cancel_pid, p->cancel_key);  // no answer, as from the server
            co_return false;
        }
        packet = std::move(*p);
        break;
    }
    bool authenticated = co_await authenticate(packet);
    if (!authenticated) co_return false;

    for (const auto& [name, value] : packet.params) {
        if (name == "user" || name == "database" || name == "options") continue;
        if (name == "replication") {
            if (value == "false" || value == "0" || value == "off" || value == "no") continue;
            ErrorFields e = ErrorFields::make("FATAL", "0A000", "replication connections are not supported by pg_rproxy");
            co_await fatal(e);
            co_return false;
        }
        if (name.rfind("_pq_.", 0) == 0) continue;  // protocol extensions: none supported
        settings_.set(name, value);
    }
    if (const std::string* options = packet.param("options")) {
        for (auto& [name, value] : protocol::parse_startup_options(*options)) settings_.set(name, value);
    }
    if (!settings_.get("application_name")) settings_.set("application_name", "");
    startup_settings_ = settings_;

    // The upstream decides the values the client is told (server_version, encodings, DateStyle
    // after the client's own settings). Learned once per distinct set of client settings.
    if (!pool().reported_parameters(settings_)) {
        std::optional<ErrorFields> failure;
        ConnectionPtr conn = co_await ensure_connection(nullptr, failure);
        if (!failure) {
            failure = co_await sync_settings(conn);
            pool().release(conn);
        }
        if (failure) {
            co_await fatal(*failure);
            co_return false;
        }
    }
    protocol::append_authentication_ok(out_);
    told_.start(pool().shared_reported_parameters(settings_));
    for (const auto& [name, value] : *pool().reported_parameters(settings_))
        protocol::append_parameter_status(out_, name, value);
    std::tie(backend_pid_, backend_key_) = worker_.new_backend_key(this);
    protocol::append_backend_key_data(out_, backend_pid_, backend_key_);
    shown_->backend_pid = backend_pid_;
    shown_->client_address = client_address_;
    shown_->upstream_user = pool().role();
    shown_->tls = tls_ != nullptr;
    shown_->tls_version = tls_version_;
    shown_->server_name = server_name_;
    session_handle_ = worker_.stats().session_started(*shown_);
    shown_.reset();
    protocol::append_ready_for_query(out_, tx_status_);
    co_return co_await flush();
}

asio::awaitable<ConnectionPtr> ClientSession::ensure_connection(ConnectionPtr conn, std::optional<ErrorFields>& failure) {
    if (conn) co_return conn;
    try {
        co_return co_await pool().acquire();
    } catch (const UpstreamUnavailable& e) {
        failure = e.fields;
    }
    co_return nullptr;
}

asio::awaitable<std::optional<ErrorFields>> ClientSession::sync_settings(const ConnectionPtr& conn) {
    if (conn->applied_settings() == settings_ && pool().reported_parameters(settings_)) co_return std::nullopt;
    std::string sql = settings_sync_sql(conn->applied_settings(), settings_);
    if (!sql.empty()) {
        // A failed sync runs in one implicit transaction, so the connection keeps what it had.
        auto result = co_await conn->run_internal(sql);
        if (result.error) co_return result.error;
    }
    conn->applied_settings() = settings_;
    UpstreamPool::ReportedParameters reported;
    for (const char* name : kReportedParameters) {
        if (const char* v = PQparameterStatus(conn->pg(), name)) reported.emplace_back(name, v);
    }
    pool().remember_parameters(settings_, std::move(reported));
    co_return std::nullopt;
}

void ClientSession::reject(const ErrorFields& e) {
    protocol::append_error(out_, e);
    protocol::append_ready_for_query(out_, tx_status_);
}

std::shared_ptr<const ParsedQuery> ClientSession::parse(const std::string& sql) {
    StatementMemo& memo = worker_.memo();
    if (auto known = memo.find(sql)) return known;
    auto parsed = std::make_shared<const ParsedQuery>(worker_.parser().parse(sql));
    memo.remember(sql, parsed);
    return parsed;
}

Verdict ClientSession::judge_known(const ParsedQuery& parsed) {
    UpstreamFunctions& functions = pool().functions();
    UpstreamVolatility lookup = [&functions](const FunctionRef& f) { return functions.lookup(f); };
    return evaluate(parsed, worker_.firewall(), lookup);
}

std::shared_ptr<const Verdict> ClientSession::known_verdict(const std::string& sql,
                                                            const std::shared_ptr<const ParsedQuery>& parsed) {
    StatementMemo& memo = worker_.memo();
    if (auto v = memo.verdict(parsed.get(), pool_)) return v;
    auto v = std::make_shared<const Verdict>(judge_known(*parsed));
    if (!v->pending_functions.empty()) return nullptr;
    memo.remember_verdict(sql, parsed, pool_, v);
    return v;
}

void ClientSession::check_judgement(const Verdict& verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure) {
    if (!verdict.allowed) {
        worker_.stats().count_rejection(verdict.reason);
        failure = ErrorFields::make("ERROR", verdict.sqlstate, verdict.message, verdict.position);
        return;
    }
    failure = track_prepared(parsed);
}

Verdict ClientSession::finish_judgement(Verdict verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure) {
    check_judgement(verdict, parsed, failure);
    return verdict;
}

asio::awaitable<Verdict> ClientSession::judge(const ParsedQuery& parsed, ConnectionPtr& conn,
                                              std::optional<ErrorFields>& failure) {
    Verdict verdict = judge_known(parsed);
    if (!verdict.pending_functions.empty()) {
        // Functions the gateway does not know: ask the upstream's pg_proc, then judge again.
        conn = co_await ensure_connection(conn, failure);
        if (!failure) failure = co_await pool().functions().resolve(*conn, verdict.pending_functions);
        if (failure) co_return verdict;
        verdict = judge_known(parsed);
    }
    co_return finish_judgement(std::move(verdict), parsed, failure);
}

// SELECT rustproxy_cache_reset() / pg_rproxy_cache_reset() sent to the proxy port is answered by
// the gateway (the upstream has no such function), as the tool users migrate from does.
bool ClientSession::answer_locally(const ParsedQuery& parsed) {
    if (parsed.statements.size() != 1 || parsed.statements[0].functions.size() != 1) return false;
    const FunctionRef& f = parsed.statements[0].functions[0];
    if (f.name != "rustproxy_cache_reset" && f.name != "pg_rproxy_cache_reset") return false;
    std::string plain = "select " + f.name + " ( )";
    std::string qualified = "select " + f.schema + " . " + f.name + " ( )";
    const std::string& n = parsed.normalized;
    bool exact = n == plain || n == plain + " ;" || (!f.schema.empty() && (n == qualified || n == qualified + " ;"));
    if (!exact) return false;
    if (!worker_.cache_config().client_cache_reset) {
        reject(ErrorFields::make("ERROR", "42501",
                                 "permission denied to reset the result cache through the proxy (pg_rproxy.client_cache_reset is off)"));
        return true;
    }
    std::string count = std::to_string(worker_.cache().cache_reset());
    {
        protocol::MessageWriter w(out_, 'T');
        w.int16(1).cstr(f.name).int32(0).int16(0).int32(20).int16(8).int32(-1).int16(0);
    }
    {
        protocol::MessageWriter w(out_, 'D');
        w.int16(1).int32(static_cast<int32_t>(count.size())).bytes(count.data(), count.size());
    }
    protocol::append_command_complete(out_, "SELECT 1");
    protocol::append_ready_for_query(out_, tx_status_);
    return true;
}

std::optional<CacheKey> ClientSession::cache_key_for(const std::string& sql, const ParsedQuery& parsed,
                                                     const Verdict& verdict, int* ttl_seconds, const std::string& extra) {
    const CacheConfig& cfg = worker_.cache_config();
    bool reads_only = !parsed.statements.empty();
    for (const auto& st : parsed.statements) reads_only = reads_only && st.kind == "SELECT";
    if (!reads_only) return std::nullopt;  // SET, SHOW, BEGIN...: nothing to cache, nothing to count
    std::optional<Uncacheable> why;
    CacheHints hints = parse_cache_hints(sql);
    if (!cfg.enabled) why = Uncacheable::Disabled;
    else if (hints.no_cache) why = Uncacheable::Hint;
    else if (pinned_ || tx_status_ != 'I') why = session_dirty_ ? Uncacheable::SessionState : Uncacheable::InTransaction;
    else if (session_dirty_ || verdict.session_state || parsed.temp_relation) why = Uncacheable::SessionState;
    else if (!verdict.cacheable) why = Uncacheable::NotDeterministic;
    else if (parsed.reads_catalog && !cfg.catalog_queries) why = Uncacheable::CatalogQuery;
    // The key is stored with the result: a huge statement or parameter would fill the cache with
    // keys. pg_rproxy.cache_max_entry_size bounds key and result together.
    else if (key_prefix().size() + parsed.normalized.size() + extra.size() >= cfg.max_entry_size) why = Uncacheable::TooLarge;
    if (why) {
        worker_.cache().count_uncacheable(*why);
        return std::nullopt;
    }
    *ttl_seconds = hints.ttl_seconds.value_or(cfg.ttl_seconds) + worker_.ttl_jitter(cfg.ttl_jitter_seconds);
    return make_cache_key(key_prefix(), parsed.normalized, extra);
}

const std::string& ClientSession::key_prefix() {
    // The upstream identity changes only with a reload.
    if (key_prefix_.empty() || key_prefix_version_ != settings_.version() || key_prefix_reloads_ != worker_.reloads()) {
        key_prefix_ = cache_key_prefix(pool().identity(), settings_);
        key_prefix_version_ = settings_.version();
        key_prefix_reloads_ = worker_.reloads();
    }
    return key_prefix_;
}

// What the result may take of an entry: the key is stored with it. The setting may have been lowered
// by a reload since the key was made: then nothing (the fill is abandoned as too large).
std::size_t ClientSession::capture_limit(const std::optional<CacheKey>& key) const {
    std::size_t max = worker_.cache_config().max_entry_size, used = key ? key->full.size() : 0;
    return max > used ? max - used : 0;
}

ProbeResult ClientSession::probe_cache_now(const CacheKey& key, std::optional<uint64_t>* fill) {
    uint64_t fill_id = 0;
    ProbeResult probe = worker_.cache().cache_probe(key, out_, &fill_id);
    if (probe == ProbeResult::Claimed) *fill = fill_id;
    return probe;
}

// Someone else is running this very statement: wait for its result instead (single flight),
// polling shared memory with a short backoff, until it is there or the fill is given up.
asio::awaitable<ProbeResult> ClientSession::wait_for_fill(const CacheKey& key, std::optional<uint64_t>* fill) {
    worker_.cache().count_coalesced();
    for (int polls = 0;; ++polls) {
        asio::steady_timer pause(socket_.get_executor(), std::chrono::milliseconds(std::min(2 << std::min(polls, 4), 20)));
        boost::system::error_code ec;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        ProbeResult probe = probe_cache_now(key, fill);
        if (probe != ProbeResult::Wait) co_return probe;
    }
}

void ClientSession::finish_fill(const CacheKey& key, uint64_t fill, bool complete, const Capture& capture, int ttl,
                                const std::string& sql, const ParsedQuery& parsed) {
    if (complete && !capture.error && !capture.overflowed && tx_status_ == 'I') {
        CacheEntryMeta meta;
        meta.rows = capture.rows;
        meta.ttl_seconds = ttl;
        meta.role = pool().role();
        meta.statement = sql.size() > 1024 ? sql.substr(0, 1024) : sql;
        for (const auto& r : parsed.relations) meta.relations += (meta.relations.empty() ? "" : ",") + r;
        worker_.cache().cache_store(key, fill, capture.bytes, meta);
        return;
    }
    if (capture.overflowed) worker_.cache().count_uncacheable(Uncacheable::TooLarge);
    if (capture.error) worker_.cache().count_uncacheable(Uncacheable::Error);
    // Too large: do not make every later client wait for a fill that will never fit.
    worker_.cache().cache_abandon(key, fill, capture.overflowed ? ttl : 1);
}

std::optional<ErrorFields> ClientSession::track_prepared(const ParsedQuery& parsed) {
    // EXECUTE may only run what this client PREPAREd through the firewall (in string order).
    bool names_statements = false;
    for (const StatementFacts& st : parsed.statements)
        names_statements = names_statements || st.deallocate_all || !st.prepare_name.empty() ||
                           !st.execute_name.empty() || !st.deallocate_name.empty();
    if (!names_statements) return std::nullopt;  // the usual case: no copy on the hot path
    std::set<std::string> known = prepared_;
    for (const StatementFacts& st : parsed.statements) {
        if (st.deallocate_all) known.clear();
        if (!st.prepare_name.empty()) known.insert(st.prepare_name);
        if (!st.deallocate_name.empty() && !known.erase(st.deallocate_name) && !statements_.count(st.deallocate_name)) {
            // Upstream, other names belong to the proxy's pooled statements: not the client's to drop.
            worker_.stats().count_rejection(RejectReason::UnknownPreparedStatement);
            return ErrorFields::make("ERROR", "26000", "prepared statement \"" + st.deallocate_name + "\" does not exist");
        }
        if (!st.execute_name.empty() && !known.count(st.execute_name)) {
            worker_.stats().count_rejection(RejectReason::UnknownPreparedStatement);
            return ErrorFields::make("ERROR", "26000", "prepared statement \"" + st.execute_name + "\" does not exist");
        }
    }
    prepared_ = std::move(known);
    return std::nullopt;
}

// DEALLOCATE of statements the proxy keeps for this client (protocol-level ones, or all of them
// when no SQL-level PREPARE lives upstream): the upstream knows them under other names.
bool ClientSession::deallocate_locally(const ParsedQuery& parsed) {
    if (parsed.statements.size() != 1) return false;
    const StatementFacts& st = parsed.statements[0];
    if (st.deallocate_all && st.kind == "DEALLOCATE ALL" && prepared_.empty()) {
        statements_.clear();
        protocol::append_command_complete(out_, "DEALLOCATE ALL");
        return true;
    }
    if (!st.deallocate_name.empty() && statements_.count(st.deallocate_name) && !prepared_.count(st.deallocate_name)) {
        statements_.erase(st.deallocate_name);
        protocol::append_command_complete(out_, "DEALLOCATE");
        return true;
    }
    return false;
}

bool ClientSession::track_settings(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded,
                                   char status_before) {
    bool changes = false, transactional = status_before != 'I';
    for (const auto& st : parsed.statements) {
        changes = changes || !st.setting_changes.empty() || st.reset_all;
        transactional = transactional || st.transaction_control;
    }
    if (!changes) return false;
    if (transactional) return true;  // a transaction may still roll them back: keep the connection
    if (!succeeded) return false;    // the implicit transaction rolled every SET of the string back
    // Two views: what the client now expects (RESET returns to its startup values), and what the
    // connection now carries (RESET returns to the connection's own defaults). Where they differ,
    // the next statement's sync puts the client's values back.
    SessionSettings carried = conn ? conn->applied_settings() : SessionSettings();
    for (const auto& st : parsed.statements) {
        if (st.reset_all) {
            settings_ = startup_settings_;
            carried = SessionSettings();
        }
        for (const auto& [name, value] : st.setting_changes) {
            if (value) {
                settings_.set(name, *value);
                carried.set(name, *value);
            } else {
                if (const std::string* initial = startup_settings_.get(name)) settings_.set(name, *initial);
                else settings_.erase(name);
                carried.erase(name);
            }
        }
    }
    if (conn) conn->applied_settings() = carried;
    // The server reported the changed GUC_REPORT settings to libpq: pass on what this client
    // has not been told yet. After a reset the connection fell back to its own defaults, not to
    // the client's startup values: what a connection carrying the client's settings reported is
    // known when they are the startup ones.
    const UpstreamPool::ReportedParameters* known = pool().reported_parameters(settings_);
    bool reset = std::any_of(parsed.statements.begin(), parsed.statements.end(),
                             [](const StatementFacts& st) { return st.reset_all; });
    for (const char* name : kReportedParameters) {
        const char* v = conn ? PQparameterStatus(conn->pg(), name) : nullptr;
        if (reset && known) {
            for (const auto& [k, value] : *known)
                if (k == name) v = value.c_str();
        }
        if (!v || told_.told(name, v)) continue;
        told_.tell(name, v);
        protocol::append_parameter_status(out_, name, v);
    }
    return false;
}

// DISCARD ALL / DEALLOCATE ALL ran upstream: the connection lost every prepared statement, and so
// did the client.
void ClientSession::after_deallocate_all(const ParsedQuery& parsed, const ConnectionPtr& conn) {
    for (const auto& st : parsed.statements) {
        if (!st.deallocate_all) continue;
        if (conn) conn->forget_all_prepared();
        statements_.clear();
        prepared_.clear();
    }
}

asio::awaitable<void> ClientSession::handle_query(const std::string& sql) {
    std::shared_ptr<const ParsedQuery> parsed = parse(sql);
    if (answer_locally(*parsed)) {
        if (!write_now()) co_await flush();
        co_return;
    }
    if (deallocate_locally(*parsed)) {
        protocol::append_ready_for_query(out_, tx_status_);
        if (!write_now()) co_await flush();
        co_return;
    }
    ConnectionPtr conn = pinned_;
    std::optional<ErrorFields> failure;
    // Judged without a coroutine unless the upstream must be asked about a function.
    std::shared_ptr<const Verdict> judged = known_verdict(sql, parsed);
    if (judged) check_judgement(*judged, *parsed, failure);
    else {
        Verdict slow = co_await judge(*parsed, conn, failure);
        judged = std::make_shared<const Verdict>(std::move(slow));
    }
    const Verdict& verdict = *judged;
    if (failure) {
        if (conn && conn != pinned_) pool().release(conn);
        reject(*failure);
        if (!write_now()) co_await flush();
        co_return;
    }
    worker_.count_statement();

    // The result cache: a hit is a hash lookup and a copy into the output buffer.
    int ttl = 0;
    std::optional<CacheKey> key = cache_key_for(sql, *parsed, verdict, &ttl, "");
    std::optional<uint64_t> fill;
    // A hit needs no coroutine; only waiting for another client's fill of the same entry does.
    ProbeResult probe = key ? probe_cache_now(*key, &fill) : ProbeResult::Bypass;
    if (probe == ProbeResult::Wait) probe = co_await wait_for_fill(*key, &fill);
    if (probe == ProbeResult::Hit) {
        if (conn && conn != pinned_) pool().release(conn);
        protocol::append_ready_for_query(out_, tx_status_);
        if (!write_now()) co_await flush();
        co_return;
    }
    Capture capture;
    capture.limit = capture_limit(key);

    Outcome outcome = Outcome::Done;
    bool pins = false;
    for (int attempt = 0; attempt < 2; ++attempt) {
        conn = co_await ensure_connection(conn, failure);
        if (failure) {
            protocol::append_error(out_, *failure);
            break;
        }
        current_conn_ = conn;
        capture.bytes.clear();
        char status_before = tx_status_;
        bool upstream_error = false;
        Request request{[&sql](PGconn* pg) { return PQsendQuery(pg, sql.c_str()); }, true};
        request.saw_error = &upstream_error;
        outcome = co_await run_on(conn, request, fill ? &capture : nullptr);
        after_deallocate_all(*parsed, conn);
        after_listen(*parsed, conn);
        pins = track_settings(*parsed, conn, outcome == Outcome::Done && !upstream_error, status_before);
        current_conn_.reset();
        tx_status_ = PQstatus(conn->pg()) == CONNECTION_OK ? transaction_status_byte(conn->pg()) : 'I';
        if (outcome == Outcome::ClientGone) {
            // Stop the statement upstream, then drop the connection: a half-read result cannot be
            // handed to the next client.
            cancel_upstream(conn);
            conn->mark_broken();
            keep_or_release(conn, false);
            break;
        }
        if (outcome == Outcome::Retry) {
            bool was_pinned = conn == pinned_;
            keep_or_release(conn, false);
            conn.reset();
            // Nothing reached the client yet and reads are repeatable: once more on a fresh
            // connection, unless the client's transaction or session state lived on the lost one.
            if (attempt == 0 && !was_pinned) continue;
            protocol::append_error(out_, ErrorFields::make("ERROR", "08006", "upstream connection lost"));
            break;
        }
        keep_or_release(conn, verdict.session_state || pins);
        break;
    }
    if (fill) finish_fill(*key, *fill, outcome == Outcome::Done && !failure, capture, ttl, sql, *parsed);
    if (outcome == Outcome::ClientGone) co_return;
    protocol::append_ready_for_query(out_, tx_status_);
    if (!write_now()) co_await flush();
}

void ClientSession::keep_or_release(ConnectionPtr conn, bool session_state) {
    if (!conn) return;
    session_dirty_ = session_dirty_ || session_state;
    bool alive = !conn->broken() && PQstatus(conn->pg()) == CONNECTION_OK;
    if (alive && (session_dirty_ || PQtransactionStatus(conn->pg()) != PQTRANS_IDLE)) {
        pinned_ = std::move(conn);
        return;
    }
    if (conn == pinned_) pinned_.reset();
    if (!alive) {
        // The session's state went with the connection; the next statement starts clean.
        session_dirty_ = false;
        prepared_.clear();
        tx_status_ = 'I';
    }
    pool().release(std::move(conn));
}

void ClientSession::release_pinned() {
    if (!pinned_) return;
    if (session_dirty_) pinned_->mark_broken();  // carries this client's settings: never reused
    pool().release(std::move(pinned_));
}

void ClientSession::watch_client(const ConnectionPtr& conn) {
    watching_ = true;
    std::weak_ptr<UpstreamConnection> weak = conn;
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this(), weak](boost::system::error_code ec) {
                           if (ec || !self->watching_) return;
                           char c;
                           ssize_t n = ::recv(self->socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
                           if (n > 0) return;  // more input: read after the statement
                           if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                               // Woken with nothing to read (the reactor can report a readiness
                               // the loop already consumed): keep watching.
                               if (auto conn = weak.lock()) self->watch_client(conn);
                               return;
                           }
                           self->client_gone_ = true;
                           if (auto conn = weak.lock()) conn->cancel_wait();
                       });
}

void ClientSession::stop_watching_client() {
    if (!watching_) return;
    watching_ = false;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
}

asio::awaitable<ClientSession::Outcome> ClientSession::relay_copy_out(const ConnectionPtr& conn, ResultRelay& relay) {
    PGconn* pg = conn->pg();
    for (;;) {
        char* buf = nullptr;
        int n = PQgetCopyData(pg, &buf, 1);
        if (n > 0) {
            relay.copy_data(buf, n);
            PQfreemem(buf);
            if (out_.size() >= kFlushThreshold && !co_await flush()) co_return Outcome::ClientGone;
        } else if (n == 0) {
            if (!co_await conn->wait_readable() || client_gone_) co_return client_gone_ ? Outcome::ClientGone : Outcome::Done;
            if (!PQconsumeInput(pg)) {
                conn->mark_broken();
                co_return Outcome::Done;  // PQgetResult reports the failure
            }
        } else {
            if (n == -1) relay.copy_done();  // -2: the error follows as a result
            co_return Outcome::Done;
        }
    }
}

asio::awaitable<ClientSession::Outcome> ClientSession::run_on(const ConnectionPtr& conn, const Request& request,
                                                               Capture* capture) {
    if (auto err = co_await sync_settings(conn)) {
        if (conn->broken() || PQstatus(conn->pg()) != CONNECTION_OK) co_return Outcome::Retry;
        protocol::append_error(out_, *err);
        co_return Outcome::Done;
    }
    PGconn* pg = conn->pg();
    conn->set_notice_sink([this](const PGresult* n) { append_notice(out_, n); });
    if (!request.send(pg) || !co_await conn->flush()) {
        conn->mark_broken();
        co_return Outcome::Retry;
    }
    PQsetSingleRowMode(pg);  // stream rows as they arrive instead of buffering whole results
    std::string& target = request.buffer ? *request.buffer : out_;
    ResultRelay relay(target, request.describe_rows);
    if (capture) relay.capture_into(&capture->bytes, capture->limit);
    if (request.binary_types) relay.encode_binary(request.binary_types);
    std::size_t start = target.size();
    bool flushed_any = false;
    watch_client(conn);
    Outcome outcome = Outcome::Done;
    for (bool done = false; !done;) {
        while (!done && !PQisBusy(pg)) {
            ResultPtr r(PQgetResult(pg));
            if (!r) {
                done = true;
                break;
            }
            if (PQstatus(pg) == CONNECTION_BAD) {
                conn->mark_broken();
                // Nothing reached the client yet and reads are repeatable: try a fresh connection.
                if (!flushed_any && relay.results() == 0 && target.size() == start) {
                    outcome = Outcome::Retry;
                    done = true;
                    break;
                }
            }
            ResultRelay::Step step = relay.relay(r.get());
            if (step == ResultRelay::Step::CopyOut) {
                r.reset();
                Outcome o = co_await relay_copy_out(conn, relay);
                if (o != Outcome::Done) {
                    outcome = o;
                    done = true;
                    break;
                }
                continue;
            }
            if (step == ResultRelay::Step::Unsupported) {
                protocol::append_error(out_, ErrorFields::make("ERROR", "0A000", "pg_rproxy cannot relay this kind of result"));
                conn->mark_broken();
                done = true;
                break;
            }
            if (!request.buffer && out_.size() >= kFlushThreshold) {
                flushed_any = true;
                // Awaiting the client here is the back-pressure: upstream is not read meanwhile.
                if (!co_await flush()) {
                    outcome = Outcome::ClientGone;
                    done = true;
                }
            }
        }
        if (done) break;
        if (!co_await conn->wait_readable() || client_gone_) {
            outcome = client_gone_ ? Outcome::ClientGone : Outcome::Done;
            if (!client_gone_) conn->mark_broken();
            break;
        }
        if (!PQconsumeInput(pg)) {
            // Let PQgetResult report the failure as an error result on the next pass.
            conn->mark_broken();
        }
    }
    stop_watching_client();
    conn->set_notice_sink(nullptr);
    if (request.saw_error) *request.saw_error = relay.saw_error();
    if (request.conversion_failed) *request.conversion_failed = relay.conversion_failed();
    if (capture) {
        capture->overflowed = relay.overflowed();
        capture->error = relay.saw_error();
        capture->rows = relay.rows();
    }
    co_return outcome;
}

}  // namespace rproxy
