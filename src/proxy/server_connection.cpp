#include "proxy/server_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include "core/reported_parameters.hpp"
#include "protocol/frontend_encode.hpp"
#include "protocol/message_writer.hpp"
#include "protocol/wire_reader.hpp"

namespace asio = boost::asio;

namespace rproxy {

namespace {

// A server message may be as large as a 1 GB field plus its framing.
constexpr std::size_t kMaxServerMessage = (std::size_t(1) << 30) + 1024;

std::string trim_newlines(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The default notice processor prints to stderr: notices during connection setup are dropped.
void ignore_notice(void*, const PGresult*) {}

}  // namespace

ErrorFields connection_failure(const std::string& why) {
    return ErrorFields::make("ERROR", "08006", "upstream connection failure: " + why);
}

ServerConnection::ServerConnection(asio::any_io_executor ex, uint64_t generation)
    : ex_(ex), transport_(ex), generation_(generation) {}

ServerConnection::~ServerConnection() {
    transport_.detach();  // before PQfinish closes the socket
    // Non-blocking since connect(): PQfinish's Terminate cannot stall the loop.
    if (pg_) PQfinish(pg_);
}

bool ServerConnection::healthy() const {
    return pg_ && !broken_ && transport_.attached() && status_ == 'I' && in_.empty() && out_.empty();
}

const std::string* ServerConnection::parameter(std::string_view name) const {
    for (const auto& [k, v] : parameters_)
        if (k == name) return &v;
    return nullptr;
}

asio::awaitable<std::string> ServerConnection::connect(const ConnectSpec& spec, bool for_login) {
    std::vector<const char*> kw, val;
    for (std::size_t i = 0; i < spec.keywords.size(); ++i) {
        kw.push_back(spec.keywords[i].c_str());
        val.push_back(spec.values[i].c_str());
    }
    kw.push_back(nullptr);
    val.push_back(nullptr);
    pg_ = PQconnectStartParams(kw.data(), val.data(), 0);
    if (!pg_) co_return "out of memory";
    if (PQstatus(pg_) == CONNECTION_BAD) {
        broken_ = true;
        co_return trim_newlines(PQerrorMessage(pg_));
    }
    PQsetNoticeReceiver(pg_, &ignore_notice, nullptr);

    // libpq ignores connect_timeout in non-blocking mode: enforce it here.
    asio::posix::stream_descriptor sock(ex_);
    bool timed_out = false;
    asio::steady_timer timer(ex_, spec.timeout);
    timer.async_wait([&sock, &timed_out](boost::system::error_code ec) {
        if (ec) return;
        timed_out = true;
        boost::system::error_code ignored;
        if (sock.is_open()) sock.cancel(ignored);
    });
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    std::string error;
    for (;;) {
        // libpq may open a new socket on every step (next host, SSL fallback), possibly reusing
        // the old number, so the registration is always renewed.
        if (sock.is_open()) sock.release();
        if (st == PGRES_POLLING_OK) break;
        if (st == PGRES_POLLING_FAILED) {
            error = trim_newlines(PQerrorMessage(pg_));
            break;
        }
        // The startup packet went: the server's answer is the client's to give (passthrough).
        if (for_login && PQstatus(pg_) == CONNECTION_AWAITING_RESPONSE) break;
        boost::system::error_code ec;
        int fd = PQsocket(pg_);
        if (fd >= 0) sock.assign(fd, ec);
        if (fd < 0 || ec) {
            error = "could not watch the connection's socket";
            break;
        }
        co_await sock.async_wait(st == PGRES_POLLING_READING ? asio::posix::descriptor_base::wait_read
                                                            : asio::posix::descriptor_base::wait_write,
                                 asio::redirect_error(asio::use_awaitable, ec));
        if (timed_out || ec) {
            if (sock.is_open()) sock.release();
            error = "timeout expired after " + std::to_string(spec.timeout.count()) + " ms";
            break;
        }
        st = PQconnectPoll(pg_);
    }
    timer.cancel();
    // PQfinish must never block on a full send buffer: set before anything else is sent.
    if (error.empty() && PQsetnonblocking(pg_, 1) != 0) error = "could not set the connection to non-blocking mode";
    if (error.empty()) error = for_login ? transport_.attach_for_login(pg_) : transport_.attach(pg_);
    if (!error.empty()) {
        broken_ = true;
        co_return error;
    }
    if (for_login) {
        RawCancel cancel;
        cancel.length = sizeof cancel.address;
        if (getpeername(PQsocket(pg_), reinterpret_cast<sockaddr*>(&cancel.address), &cancel.length) != 0) cancel.length = 0;
        own_cancel_ = cancel;
        co_return "";
    }
    take_over();
    co_return "";
}

void ServerConnection::finish_login(int32_t backend_pid, int32_t cancel_key) {
    backend_pid_ = backend_pid;
    if (own_cancel_) {
        own_cancel_->pid = backend_pid;
        own_cancel_->key = cancel_key;
    }
    status_ = 'I';
}

// As PQcancel does: a new connection to the same address, a CancelRequest, and close.
void ServerConnection::RawCancel::send() const {
    if (length == 0 || pid == 0) return;
    int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    // The helper thread serves every worker's lookups: a server that does not answer holds it 5 s
    // at most (Linux bounds connect() by the send timeout too).
    timeval limit{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), length) == 0) {
        unsigned char packet[16];
        auto put = [&packet](int at, uint32_t v) {
            packet[at] = static_cast<unsigned char>(v >> 24);
            packet[at + 1] = static_cast<unsigned char>(v >> 16);
            packet[at + 2] = static_cast<unsigned char>(v >> 8);
            packet[at + 3] = static_cast<unsigned char>(v);
        };
        put(0, 16);
        put(4, 80877102);  // the cancel request code
        put(8, static_cast<uint32_t>(pid));
        put(12, static_cast<uint32_t>(key));
        ssize_t ignored = ::send(fd, packet, sizeof packet, MSG_NOSIGNAL);
        (void)ignored;
        char c;
        ssize_t done = ::recv(fd, &c, 1, 0);  // the server closes when it has read it
        (void)done;
    }
    ::close(fd);
}

// What libpq consumed during startup, kept here: ParameterStatus values and the backend's PID.
void ServerConnection::take_over() {
    for (const char* name : kReportedParameters)
        if (const char* v = PQparameterStatus(pg_, name)) parameters_.emplace_back(name, v);
    backend_pid_ = PQbackendPID(pg_);
    status_ = 'I';
}

void ServerConnection::observe(const protocol::BackendMessage& m) {
    switch (m.type) {
        case 'Z':
            status_ = protocol::decode_ready_for_query(m.body);
            break;
        case 'S': {
            auto ps = protocol::decode_parameter_status(m.body);
            for (auto& [k, v] : parameters_) {
                if (k == ps.name) {
                    v.assign(ps.value);
                    return;
                }
            }
            parameters_.emplace_back(std::string(ps.name), std::string(ps.value));
            break;
        }
        case 'E': {
            // A FATAL (or PANIC) error is the server's goodbye: the connection ends after it.
            ErrorFields e = protocol::decode_error_response(m.body);
            const std::string* sev = e.find('V');
            if (!sev) sev = e.find('S');
            if (sev && (*sev == "FATAL" || *sev == "PANIC")) broken_ = true;
            break;
        }
        default:
            break;
    }
}

std::optional<protocol::BackendMessage> ServerConnection::next_buffered() {
    std::size_t used = 0;
    auto m = protocol::decode_backend_message(in_.unread(), kMaxServerMessage, used);
    if (!m) return std::nullopt;
    in_.skip(used);
    observe(*m);
    if (tap_) tap_->message(tap_session_, Direction::UpstreamToProxy, m->type, m->body);
    return m;
}

std::string_view ServerConnection::data_rows(uint64_t& rows) {
    std::string_view buf = in_.unread();
    std::size_t end = 0;
    while (buf.size() - end >= 5 && buf[end] == 'D') {
        uint32_t len = protocol::be32(buf, end + 1);
        if (len < 4 || len > kMaxServerMessage || buf.size() - end - 1 < len) break;  // next_buffered() judges it
        end += 1 + len;
        ++rows;
    }
    in_.skip(end);
    if (tap_ && end > 0) tap_->messages(tap_session_, Direction::UpstreamToProxy, buf.substr(0, end));
    return buf.substr(0, end);
}

void ServerConnection::tap_output() {
    if (out_tapped_ > out_.size()) out_tapped_ = out_.size();
    if (out_tapped_ < out_.size())
        tap_->messages(tap_session_, Direction::ProxyToUpstream, std::string_view(out_).substr(out_tapped_));
    out_tapped_ = out_.size();
}

asio::awaitable<std::optional<protocol::BackendMessage>> ServerConnection::next() {
    for (;;) {
        try {
            if (auto m = next_buffered()) co_return m;
        } catch (const protocol::ProtocolError&) {
            broken_ = true;  // a server that breaks the protocol is not talked to again
            co_return std::nullopt;
        }
        if (broken_) co_return std::nullopt;
        if (!co_await transport_.read(in_)) {
            // Cancelled (the client went away, or shutdown): the caller decides what happens next.
            if (!transport_.cancelled()) broken_ = true;
            co_return std::nullopt;
        }
    }
}

bool ServerConnection::send_now() {
    if (out_.empty()) return true;
    if (broken_) return false;
    if (tap_) tap_output();
    long done = transport_.write_now(out_);
    if (done < 0) {
        broken_ = true;
        return false;
    }
    if (static_cast<std::size_t>(done) < out_.size()) {
        out_.erase(0, static_cast<std::size_t>(done));  // send() writes the rest
        out_tapped_ = out_.size();
        return false;
    }
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    else out_.clear();
    out_tapped_ = 0;
    return true;
}

// The start of send_now() again rather than a call to it: with the call as this coroutine's first
// statement, GCC 12 built a send() that ran with a wild `this` (seen in gdb; every e2e run crashed).
asio::awaitable<bool> ServerConnection::send() {
    if (out_.empty()) co_return true;
    if (broken_) co_return false;
    if (tap_) tap_output();
    long done = transport_.write_now(out_);
    if (done < 0) {
        broken_ = true;
        co_return false;
    }
    out_.erase(0, static_cast<std::size_t>(done));
    out_tapped_ = out_.size();
    if (!out_.empty() && !co_await transport_.write(out_, &in_)) {
        broken_ = true;
        co_return false;
    }
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    else out_.clear();
    out_tapped_ = 0;
    co_return true;
}

// Simple protocol without parameters; otherwise one unnamed Parse/Bind/Execute. Every message up
// to ReadyForQuery is read, so the connection is left at a message boundary.
asio::awaitable<ServerConnection::InternalResult> ServerConnection::run_internal(const std::string& sql,
                                                                                 const std::vector<std::string>& params) {
    InternalResult out;
    if (params.empty()) {
        protocol::append_query(out_, sql);
    } else {
        std::vector<std::optional<std::string_view>> values(params.begin(), params.end());
        protocol::append_parse(out_, "", sql, {});
        protocol::append_bind(out_, "", "", {}, values, {});
        protocol::append_execute(out_, "", 0);
        protocol::append_sync(out_);
    }
    if (!co_await send()) {
        out.error = connection_failure("could not send to the upstream");
        co_return out;
    }
    bool fresh = true;  // the rows of the next result replace those of the last
    for (;;) {
        auto m = co_await next();
        if (!m) {
            broken_ = true;
            out.error = connection_failure("the upstream closed the connection");
            co_return out;
        }
        switch (m->type) {
            case 'D': {
                if (fresh) out.rows.clear();
                fresh = false;
                std::vector<std::optional<std::string>> row;
                for (const auto& v : protocol::decode_data_row(m->body)) row.emplace_back(v);
                out.rows.push_back(std::move(row));
                break;
            }
            case 'C': fresh = true; break;
            case 'E':
                if (!out.error) out.error = protocol::decode_error_response(m->body);
                break;
            case 'A': protocol::MessageWriter(notifications_, 'A').bytes(m->body.data(), m->body.size()); break;
            case 'Z': co_return out;
            default: break;  // notices, descriptions, completions
        }
    }
}

const std::string* ServerConnection::prepared_name(const std::string& key) {
    auto it = prepared_index_.find(key);
    if (it == prepared_index_.end()) return nullptr;
    prepared_.splice(prepared_.begin(), prepared_, it->second);  // most recently used first
    return &it->second->second;
}

std::string ServerConnection::add_prepared(const std::string& key, std::vector<std::string>* evicted) {
    constexpr std::size_t kMaxPrepared = 100, kMaxBytes = 8 * 1024 * 1024;
    while (!prepared_.empty() && (prepared_.size() >= kMaxPrepared || prepared_bytes_ + key.size() > kMaxBytes)) {
        evicted->push_back(prepared_.back().second);
        forget_prepared(prepared_.back().first);
    }
    std::string name = "pg_rproxy_" + std::to_string(++prepared_seq_);
    prepared_.emplace_front(key, name);
    prepared_index_[prepared_.front().first] = prepared_.begin();
    prepared_bytes_ += key.size();
    return name;
}

void ServerConnection::forget_prepared(const std::string& key) {
    auto it = prepared_index_.find(key);
    if (it == prepared_index_.end()) return;
    auto node = it->second;
    prepared_index_.erase(it);  // before the node that owns the key's text goes
    prepared_bytes_ -= node->first.size();
    prepared_.erase(node);
}

void ServerConnection::forget_all_prepared() {
    prepared_index_.clear();
    prepared_.clear();
    prepared_bytes_ = 0;
}

void ServerConnection::watch_idle(std::function<void()> on_broken, std::function<void()> on_input) {
    if (!transport_.attached() || broken_) return;
    idle_watch_ = true;
    transport_.async_wait_readable(
        [this, on_broken = std::move(on_broken), on_input = std::move(on_input)](boost::system::error_code ec) mutable {
            if (ec || !idle_watch_) return;
            // Readable while idle: a notification, a notice, or the server's goodbye.
            std::size_t got = 0;
            bool ok = transport_.read_now(in_, got);
            try {
                while (auto m = next_buffered()) {
                    if (m->type == 'A') protocol::MessageWriter(notifications_, 'A').bytes(m->body.data(), m->body.size());
                }
            } catch (const protocol::ProtocolError&) {
                ok = false;
            }
            if (!ok || broken_) {
                idle_watch_ = false;
                broken_ = true;
                on_broken();
                return;
            }
            if (on_input) on_input();
            if (idle_watch_) watch_idle(std::move(on_broken), std::move(on_input));
        });
}

void ServerConnection::stop_idle_watch() {
    if (!idle_watch_) return;
    idle_watch_ = false;
    transport_.cancel();
}

}  // namespace rproxy
