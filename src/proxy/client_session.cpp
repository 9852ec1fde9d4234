#include "proxy/client_session.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <tuple>

#include "protocol/backend_messages.hpp"
#include "protocol/message_writer.hpp"
#include "proxy/cache_key.hpp"
#include "proxy/io_counters.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

namespace rproxy {

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kKeepBuffer = 256 * 1024;  // larger buffers are freed once empty


ErrorFields terminating() {
    return ErrorFields::make("FATAL", "57P01", "terminating connection due to administrator command");
}

}  // namespace

ClientSession::ClientSession(Worker& worker, ClientSocket socket)
    : worker_(worker), socket_(std::move(socket)), pipeline_(worker, *this) {
    boost::system::error_code ec;
    auto peer = socket_.remote_endpoint(ec);
    if (!ec) {
        auto addr = peer.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
        client_address_ = addr.to_string();
        starting_->shown.client_address = client_address_;
    }
    auto local = socket_.local_endpoint(ec);  // the family to give the socket back to Asio with after parking
    v6_ = !ec && local.address().is_v6();
    socket_.non_blocking(true, ec);  // read_some() reads only once the socket is readable
}

ClientSession::~ClientSession() {
    if (parked_fd_ >= 0) ::close(parked_fd_);  // the worker is going away with its clients parked
}

std::size_t ClientSession::read_available(boost::system::error_code& ec) {
    asio::mutable_buffer shared = worker_.read_buffer();
    std::size_t n = socket_.read_some(shared, ec);  // never blocks: would_block when nothing is there
    if (!ec) {
        input_->append(static_cast<const char*>(shared.data()), n);
        io_counters.client_received += n;
    }
    socket_drained_ = ec == asio::error::would_block || ec == asio::error::try_again || (!ec && n < shared.size());
    return n;
}

asio::awaitable<void> ClientSession::write_all(asio::const_buffer buf, boost::system::error_code& ec) {
    std::size_t n;
    if (tls_) n = co_await asio::async_write(*tls_, buf, asio::redirect_error(asio::use_awaitable, ec));
    else n = co_await asio::async_write(socket_, buf, asio::redirect_error(asio::use_awaitable, ec));
    io_counters.client_sent += n;
}

void ClientSession::request_shutdown() {
    advance(Phase::Draining);
    if (idle_) interrupt_wait();
}

void ClientSession::force_close() {
    advance(Phase::Gone);
    if (parked_fd_ >= 0) interrupt_wait();  // the socket is Asio's again, to be closed below
    if (!socket_.is_open()) return;
    std::string msg;
    protocol::append_error(msg, terminating());
    if (tap_ && !tls_) tap_->messages(backend_pid_, Direction::ProxyToClient, msg, tap_hold());
    if (!tls_) ::send(socket_.native_handle(), msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (auto c = pipeline_.running()) c->cancel_wait();
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.cancel(ignored);
}


// While a listening client waits for its next message, its pinned upstream connection is watched
// too: notifications go out as they arrive, as the server would send them to an idle session.
void ClientSession::watch_notifications() {
    ConnectionPtr conn = pipeline_.listening_connection();
    if (!conn || watching_notifications_) return;
    watching_notifications_ = true;
    std::weak_ptr<ClientSession> weak = shared_from_this();
    conn->watch_idle([weak, conn] {  // the connection broke: the next statement reports it
        if (auto self = weak.lock()) self->watching_notifications_ = false;
    }, [weak, conn] {
        auto self = weak.lock();
        if (!self || self->gone() || !self->pipeline_.relay_notifications(conn)) return;
        // read_more writes them with flush(), so a notification never interleaves with another write.
        self->notifications_ready_ = true;
        self->interrupt_wait();
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
        const ConnectionPtr& listening = pipeline_.listening_connection();
        if (deliver && listening && pipeline_.relay_notifications(listening)) notifications_ready_ = true;
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
            char* room = input_->prepare(kReadChunk);
            n = co_await tls_->async_read_some(asio::buffer(room, kReadChunk),
                                               asio::redirect_error(asio::use_awaitable, ec));
            input_->commit(n);
            io_counters.client_received += n;
        } else {
            // Plain sockets are read only once readable, into the worker's one buffer: an idle
            // client holds no read buffer of its own.
            for (;;) {
                // A socket drained by the last read has nothing new unless the client sent more
                // since, which the wait reports at once (re-arming an edge-triggered epoll
                // registration reports data already there): a client that waits for each answer
                // costs no read that finds nothing.
                if (socket_drained_) ec = asio::error::would_block;
                else n = read_available(ec);
                if (ec != asio::error::would_block && ec != asio::error::try_again) break;
                ec.clear();
                bool may_park = parkable() && !notifications_ready_ && !timed_out;
                if (may_park && park_at_wait_) {
                    park_at_wait_ = false;
                    parking_ = true;
                    co_return 0;
                }
                wait_epoch_ = worker_.park_epoch();
                co_await socket_.async_wait(asio::ip::tcp::socket::wait_read,
                                            asio::redirect_error(asio::use_awaitable, ec));
                wait_epoch_ = 0;
                socket_drained_ = false;
                bool park_now = park_requested_ && ec == asio::error::operation_aborted && parkable() &&
                                !notifications_ready_ && !timed_out;
                park_requested_ = false;
                if (park_now) {
                    socket_drained_ = true;  // cancelled, not woken: nothing new was seen
                    parking_ = true;
                    co_return 0;
                }
                if (ec) break;
            }
        }
        if (!notifications_ready_) co_return n;
        if (n > 0 || ec != asio::error::operation_aborted || timed_out || draining()) {
            notifications_ready_ = false;
            if (!write_now()) co_await flush();
            co_return n;
        }
        ec.clear();  // the read was cancelled only to deliver them
    }
}

void ClientSession::arm_idle_timer() {
    const UpstreamConfig& cfg = pipeline_.upstream().config();
    bool in_transaction = pipeline_.transaction_status() != 'I';
    std::chrono::milliseconds limit = in_transaction ? cfg.idle_in_transaction_timeout : cfg.idle_client_timeout;
    if (limit.count() <= 0) return;
    if (!idle_timer_) idle_timer_ = std::make_unique<IdleTimer>(socket_.get_executor());
    IdleTimer& t = *idle_timer_;
    ++t.generation;
    t.armed = true;
    t.fired = false;
    t.in_transaction = in_transaction;
    t.timer.expires_after(limit);
    std::weak_ptr<ClientSession> weak = shared_from_this();
    t.timer.async_wait([weak, generation = t.generation](boost::system::error_code e) {
        if (e) return;
        auto self = weak.lock();
        if (!self || !self->idle_timer_ || self->idle_timer_->generation != generation) return;
        self->idle_timer_->fired = true;
        self->interrupt_wait();
    });
}

// The wait for the next message is over: its timer and the notification watch stop, so that
// neither interrupts what is written next.
void ClientSession::end_idle_wait() {
    disarm_idle_timer();
    if (watching_notifications_ && pipeline_.listening_connection()) {
        pipeline_.listening_connection()->stop_idle_watch();
        watching_notifications_ = false;
    }
    idle_ = false;
    resumed_idle_ = false;
}

void ClientSession::disarm_idle_timer() {
    if (!idle_timer_ || !idle_timer_->armed) return;
    idle_timer_->armed = false;
    ++idle_timer_->generation;  // an expiry already queued is stale
    idle_timer_->timer.cancel();
}

asio::awaitable<bool> ClientSession::read_more(bool idle_timeouts) {
    boost::system::error_code ec;
    if (!resumed_idle_) {
        idle_ = true;
        if (idle_timeouts) arm_idle_timer();
    }
    resumed_idle_ = false;
    static const bool kNeverFired = false;
    const bool& timed_out = idle_timer_ && idle_timer_->armed ? idle_timer_->fired : kNeverFired;
    std::size_t n = 0;
    if (!timed_out) n = co_await read_delivering_notifications(idle_timeouts, timed_out, ec);
    if (parking_) co_return false;  // the timer and the notification watch go on while parked
    bool fired = timed_out;
    bool in_transaction = idle_timer_ && idle_timer_->in_transaction;
    end_idle_wait();
    if (fired) {
        idle_end_ = in_transaction ? IdleEnd::Transaction : IdleEnd::Session;
        co_return false;
    }
    co_return !ec && n > 0 && !gone();
}

bool ClientSession::write_now() {
    if (out_.empty() || gone()) return true;
    if (tls_) return false;
    if (tap_) tap_output();
    std::size_t done = 0;
    while (done < out_.size()) {
        boost::system::error_code ec;
        std::size_t n = socket_.write_some(asio::buffer(out_.data() + done, out_.size() - done), ec);  // never blocks
        if (ec == asio::error::would_block || ec == asio::error::try_again) break;
        if (ec) {
            advance(Phase::Gone);
            out_.clear();
            out_tapped_ = 0;
            return true;
        }
        done += n;
    }
    io_counters.client_sent += done;
    if (done == out_.size()) {
        if (out_.capacity() > kKeepBuffer) std::string().swap(out_);
        else out_.clear();
        out_tapped_ = 0;
        return true;
    }
    out_.erase(0, done);
    out_tapped_ = out_.size();  // the rest was logged, and flush() writes it next
    return false;
}

// A notification relayed while the write is under way is appended to out_: it goes out in the
// next round, never into the buffer being written.
asio::awaitable<bool> ClientSession::flush() {
    std::string sending;
    while (!out_.empty() && !gone()) {
        if (tap_) tap_output();
        sending.swap(out_);
        out_tapped_ = 0;
        boost::system::error_code ec;
        co_await write_all(asio::buffer(sending), ec);
        if (ec) advance(Phase::Gone);
        sending.clear();
        // keep the buffer's capacity for the next statement, unless a big result made it large
        if (out_.empty() && sending.capacity() <= kKeepBuffer) out_.swap(sending);
    }
    if (gone()) {
        out_.clear();
        out_tapped_ = 0;
    }
    co_return !gone();
}

asio::awaitable<void> ClientSession::fatal(const ErrorFields& e) {
    ErrorFields f = e;
    for (auto& [code, value] : f.fields)
        if (code == 'S' || code == 'V') value = "FATAL";
    protocol::append_error(out_, f);
    if (!write_now()) co_await flush();
}

asio::awaitable<std::optional<protocol::FrontendMessage>> ClientSession::next_message() {
    input_->release();  // the previous message is handled; a large one is not kept while idle
    for (;;) {
        if (auto msg = protocol::take_message(*input_, worker_.limits().max_message_size)) {
            if (tap_) tap_input(*msg);
            co_return msg;
        }
        if (draining() || !co_await read_more(true)) co_return std::nullopt;
    }
}

void ClientSession::start() { spawn(true); }

void ClientSession::spawn(bool first) {
    asio::co_spawn(socket_.get_executor(), serve(first), [self = shared_from_this()](std::exception_ptr) {
        if (self->parking_) self->park();
        else self->finish();
    });
}

bool ClientSession::parkable() const {
    return between_statements_ && phase_ == Phase::Ready && !tls_ && out_.empty() && !pipeline_.mid_batch();
}

void ClientSession::park() {
    parking_ = false;
    if (out_.empty()) std::string().swap(out_);  // parkable(): nothing is waiting to be written
    if (input_->empty()) input_.reset();  // else a message's start waits for the rest
    pipeline_.shed_idle_memory();
    boost::system::error_code ec;
    int fd = socket_.release(ec);
    if (!ec && worker_.parked_clients().park(fd, this)) {
        parked_fd_ = fd;
        worker_.count_parked(1);
        return;
    }
    if (!ec) {  // the kernel would not take it: wait with Asio as before
        socket_.assign(v6_ ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
        if (!ec) socket_.non_blocking(true, ec);
    }
    if (ec) {
        if (!socket_.is_open() && fd >= 0) ::close(fd);
        advance(Phase::Gone);
        resume(false);
        return;
    }
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](boost::system::error_code e) { self->resume(!e); });
}

void ClientSession::resume(bool readable) {
    if (parked_fd_ >= 0) {
        int fd = parked_fd_;
        parked_fd_ = -1;
        worker_.count_parked(-1);
        boost::system::error_code ec;
        socket_.assign(v6_ ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
        if (!ec) socket_.non_blocking(true, ec);  // Asio's own flag: its reads must not block
        if (ec) {
            if (!socket_.is_open()) ::close(fd);
            advance(Phase::Gone);
        }
    }
    if (!input_) input_ = std::make_unique<protocol::InputBuffer>();
    if (readable) socket_drained_ = false;
    resumed_idle_ = true;
    spawn(false);
}

void ClientSession::interrupt_wait() {
    if (parked_fd_ >= 0) {
        worker_.parked_clients().unpark(parked_fd_);
        resume(false);
        return;
    }
    boost::system::error_code ignored;
    socket_.cancel(ignored);
}

void ClientSession::park_if_waiting_since_before(uint64_t epoch) {
    if (wait_epoch_ == 0 || wait_epoch_ >= epoch || park_requested_ || !parkable()) return;
    park_requested_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
}

void ClientSession::finish() {
    if (tap_) tap_finish();
    pipeline_.release_pinned();
    disarm_idle_timer();
    if (starting_ && starting_->auth_timer) starting_->auth_timer->cancel();
    if (client_claimed_) worker_.auth_catalog().release_client();
    if (role_claimed_) worker_.auth_catalog().release_role(role_claimed_);
    if (session_handle_ >= 0) worker_.stats().session_ended(session_handle_);
    client_claimed_ = false;
    role_claimed_ = 0;
    backend_pid_ = 0;
    session_handle_ = -1;
    worker_.session_ended(this);
}

void ClientSession::cancel_statement(int32_t pid, int32_t key) {
    if (pid != backend_pid_ || key != backend_key_) return;
    auto conn = pipeline_.running();
    if (conn) pipeline_.cancel_upstream(conn);  // nothing running: like the server, a late cancel does nothing
}


asio::awaitable<void> ClientSession::serve(bool first) {
    std::optional<ErrorFields> failure;
    try {
        bool started = true;
        if (first) started = co_await startup();
        if (!started) co_return;
        for (;;) {
            if (draining()) {
                if (idle_) end_idle_wait();  // woken from parking to be told 57P01
                failure = terminating();
                break;
            }
            // A message already received is handled without a coroutine: an extended-protocol
            // batch arrives as one read of five messages. What the pipeline answers at once
            // (extended_now) is read where it lies in the buffer, without a copy.
            input_->release();
            std::size_t used = 0;
            auto msg = protocol::decode_message(input_->unread(), worker_.limits().max_message_size, used);
            bool in_place = msg.has_value();  // a view into input_, until skipped or taken
            if (tap_ && in_place) tap_input(*msg);
            if (!in_place) {
                between_statements_ = true;  // only this wait may park, not one inside a statement (COPY FROM STDIN)
                msg = co_await next_message();
                between_statements_ = false;
            }
            if (!msg) {
                if (parking_) co_return;
                if (phase_ == Phase::Draining) failure = terminating();
                else if (idle_end_ == IdleEnd::Transaction)
                    failure = ErrorFields::make("FATAL", "25P03", "terminating connection due to idle-in-transaction timeout");
                else if (idle_end_ == IdleEnd::Session)
                    failure = ErrorFields::make("FATAL", "57P05", "terminating connection due to idle-session timeout");
                break;
            }
            if (std::string_view("PBDECHS").find(msg->type) != std::string_view::npos && pipeline_.extended_now(*msg)) {
                if (in_place) input_->skip(used);
                if (msg->type == 'S') {
                    if (!write_now()) co_await flush();
                } else if (pipeline_.output_due()) {
                    co_await flush();  // a batch of cached answers before its Sync is not held whole
                }
                continue;
            }
            if (in_place) msg->body = input_->take(used).substr(5);
            switch (msg->type) {
                case 'Q': {
                    // After an extended-protocol error the server skips everything up to Sync,
                    // simple queries included.
                    if (pipeline_.discarding()) break;
                    std::string sql(protocol::decode_query(msg->body));
                    input_->release();  // a large statement is not held twice while it runs
                    co_await pipeline_.handle_query(sql);
                    if (gone()) co_return;
                    break;
                }
                case 'X':
                    co_return;
                case 'd': case 'c': case 'f':
                    break;  // copy messages outside COPY are ignored, as PostgreSQL does
                case 'F':  // fast-path function call: judged by function and arguments
                    if (pipeline_.discarding()) break;  // skipped up to Sync, as the server does
                    co_await pipeline_.handle_function_call(msg->body);
                    if (gone()) co_return;
                    break;
                case 'P': case 'B': case 'D': case 'E': case 'C': case 'H': case 'S':
                    co_await pipeline_.handle_extended(*msg);
                    if (gone()) co_return;
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
    // The key first: its pid names the session in the message log from the first message on.
    std::tie(backend_pid_, backend_key_) = worker_.new_backend_key();
    tap_start();
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
        auto p = protocol::decode_startup_packet(input_->unread(), used);
        if (!p) {
            if (!co_await read_more()) co_return false;
            continue;
        }
        input_->take(used);  // the packet was decoded into owned strings
        if (tap_) tap_->startup(backend_pid_, *p, tap_hold());
        if (p->kind == protocol::StartupPacket::Kind::SslRequest ||
            p->kind == protocol::StartupPacket::Kind::GssEncRequest) {
            if (!input_->empty())
                throw protocol::ProtocolError("08P01", "received unencrypted data after SSL request");
            if (tls_) throw protocol::ProtocolError("08P01", "SSL request on an encrypted connection");
            bool tls = p->kind == protocol::StartupPacket::Kind::SslRequest && tls_offered;
            out_.push_back(tls ? 'S' : 'N');
            if (tap_) {
                tap_->negotiation_answer(backend_pid_, out_.back(), tap_hold());
                out_tapped_ = out_.size();  // not a framed message: the output tap skips it
            }
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

    if (auto failure = co_await pipeline_.start(packet)) {
        co_await fatal(*failure);
        co_return false;
    }
    protocol::append_authentication_ok(out_);
    pipeline_.announce_parameters();
    protocol::append_backend_key_data(out_, backend_pid_, backend_key_);
    SessionInfo& shown = starting_->shown;
    shown.backend_pid = backend_pid_;
    shown.client_address = client_address_;
    shown.upstream_user = pipeline_.upstream_role();
    shown.tls = tls_ != nullptr;
    session_handle_ = worker_.stats().session_started(shown);
    identity_ = worker_.intern_identity(shown);
    worker_.audit_connection(ConnEvent::Authenticated, *identity_, backend_pid_, "00000");
    starting_.reset();
    protocol::append_ready_for_query(out_, pipeline_.transaction_status());
    park_at_wait_ = !tls_;
    co_return co_await flush();
}

void ClientSession::note_event(ConnEvent e, std::string_view sqlstate) {
    static const SessionInfo nobody;
    const SessionInfo& who = starting_ ? starting_->shown : identity_ ? *identity_ : nobody;
    worker_.connection_event(e, who, backend_pid_, sqlstate);
}

void ClientSession::watch_while_busy(const ConnectionPtr& conn) {
    watching_ = true;
    std::weak_ptr<ServerConnection> weak = conn;
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this(), weak](boost::system::error_code ec) {
                           if (ec || !self->watching_) return;
                           char c;
                           ssize_t n = ::recv(self->socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
                           if (n > 0) {  // more input: read after the statement
                               self->socket_drained_ = false;
                               return;
                           }
                           if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                               // Woken with nothing to read (the reactor can report a readiness
                               // the loop already consumed): keep watching.
                               if (auto conn = weak.lock()) self->watch_while_busy(conn);
                               return;
                           }
                           self->advance(Phase::Gone);
                           if (auto conn = weak.lock()) conn->cancel_wait();
                       });
}

void ClientSession::stop_watching() {
    if (!watching_) return;
    watching_ = false;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
}

ClientIdentity ClientSession::identity() const {
    return ClientIdentity{identity_->role, identity_->database, identity_->server_name, identity_->client_address};
}

void ClientSession::show_pinned(const char* reason) {
    if (session_handle_ >= 0) worker_.stats().session_pinned(session_handle_, reason);
}

}  // namespace rproxy
