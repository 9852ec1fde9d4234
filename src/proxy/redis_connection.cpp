#include "proxy/redis_connection.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/sha.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <map>

namespace asio = boost::asio;

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

RedisReply RedisReply::from(const redisReply* r) {
    RedisReply out;
    if (!r) return out;
    switch (r->type) {
        case REDIS_REPLY_STRING: out.type = Type::String; out.str.assign(r->str, r->len); break;
        case REDIS_REPLY_STATUS: out.type = Type::Status; out.str.assign(r->str, r->len); break;
        case REDIS_REPLY_ERROR: out.type = Type::Error; out.str.assign(r->str, r->len); break;
        case REDIS_REPLY_INTEGER: out.type = Type::Integer; out.integer = r->integer; break;
        case REDIS_REPLY_ARRAY:
            out.type = Type::Array;
            out.elements.reserve(r->elements);
            for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(from(r->element[i]));
            break;
        default: break;
    }
    return out;
}

// hiredis asks to watch its socket for reads and writes: each request arms one wait on the loop,
// which hands the event back to hiredis (which asks again while it still wants it).
struct RedisConnection::Events {
    Events(asio::io_context& io, redisAsyncContext* c) : ctx(c), sd(io, c->c.fd) {}
    redisAsyncContext* ctx;
    asio::posix::stream_descriptor sd;
    bool want_read = false, want_write = false, reading = false, writing = false;

    static void arm(const std::shared_ptr<Events>& e, bool read) {
        bool& busy = read ? e->reading : e->writing;
        if (busy || !e->ctx) return;
        busy = true;
        e->sd.async_wait(read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
                         [e, read](const boost::system::error_code& ec) {
                             (read ? e->reading : e->writing) = false;
                             if (ec || !e->ctx) return;
                             if (read && e->want_read) redisAsyncHandleRead(e->ctx);
                             else if (!read && e->want_write) redisAsyncHandleWrite(e->ctx);
                         });
    }
    // ev.data holds a heap copy of the owning pointer, freed by cleanup.
    static std::shared_ptr<Events>& of(void* data) { return *static_cast<std::shared_ptr<Events>*>(data); }
    static void add_read(void* d) { of(d)->want_read = true; arm(of(d), true); }
    static void del_read(void* d) { of(d)->want_read = false; }
    static void add_write(void* d) { of(d)->want_write = true; arm(of(d), false); }
    static void del_write(void* d) { of(d)->want_write = false; }
    static void cleanup(void* d) {
        auto* holder = static_cast<std::shared_ptr<Events>*>(d);
        (*holder)->ctx = nullptr;
        boost::system::error_code ec;
        (*holder)->sd.release();  // hiredis closes the socket itself
        delete holder;
    }
};

namespace {

struct Pending {
    std::function<void(const redisReply*)> done;
    uint64_t generation;
    bool persistent = false;  // a subscription: called for every message, freed on the last (nullptr) call
};

struct Owner {
    RedisConnection* conn;
};

const std::string& sha1_of(std::string_view body) {
    static std::map<const char*, std::string> known;  // the scripts are static strings
    auto it = known.find(body.data());
    if (it != known.end()) return it->second;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
    static const char hex[] = "0123456789abcdef";
    std::string s;
    for (unsigned char c : digest) {
        s += hex[c >> 4];
        s += hex[c & 15];
    }
    return known.emplace(body.data(), s).first->second;
}

std::vector<std::string> script_args(const char* verb, const std::string& body_or_sha, const std::vector<std::string>& keys,
                                     const std::vector<std::string>& argv) {
    std::vector<std::string> args;
    args.reserve(3 + keys.size() + argv.size());
    args.emplace_back(verb);
    args.push_back(body_or_sha);
    args.push_back(std::to_string(keys.size()));
    args.insert(args.end(), keys.begin(), keys.end());
    args.insert(args.end(), argv.begin(), argv.end());
    return args;
}

// hiredis calls these from C: nothing may unwind through it (it would leave the context marked
// as inside a callback, never to be freed).
void run_done(Pending* p, const redisReply* r) noexcept {
    try {
        if (p->done) p->done(r);
    } catch (...) {
    }
}

bool is_noscript(const redisReply* r) {
    return r && r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).substr(0, 8) == "NOSCRIPT";
}

}  // namespace

void RedisConnection::command_callback(redisAsyncContext* ac, void* reply, void* data) noexcept {
    auto* p = static_cast<Pending*>(data);
    if (auto* self = static_cast<RedisConnection*>(ac->data); self && p->generation == self->generation_) {
        self->outstanding_--;
        if (reply) self->last_reply_ = std::chrono::steady_clock::now();
    }
    run_done(p, static_cast<redisReply*>(reply));
    delete p;
}

void RedisConnection::subscription_callback(redisAsyncContext*, void* reply, void* data) noexcept {
    auto* p = static_cast<Pending*>(data);
    run_done(p, static_cast<redisReply*>(reply));
    if (!reply) delete p;  // the last call: the context is going
}

RedisConnection::RedisConnection(asio::io_context& io, BlockingHelper& helper, Log log, std::function<void()> count_failure)
    : io_(io), helper_(helper), log_(std::move(log)), count_failure_(std::move(count_failure)), retry_(io) {}

RedisConnection::~RedisConnection() {
    *alive_ = false;
    endpoint_.reset();
    drop();
}

void RedisConnection::configure(const std::optional<RedisEndpoint>& endpoint, std::chrono::milliseconds timeout) {
    timeout_ = timeout;
    if (endpoint == endpoint_) return;
    bool was_on = endpoint_.has_value();
    drop();
    retry_.cancel();
    endpoint_ = endpoint;
    failures_ = 0;
    reported_down_ = false;
    if (!endpoint_) {
        state_ = State::Off;
        if (was_on) log_(false, "pg_rproxy: Redis cache off");
        return;
    }
    start_connect();
}

void RedisConnection::start_connect() {
    if (!endpoint_) return;
    state_ = State::Resolving;
    const RedisEndpoint& ep = *endpoint_;
    unsigned char buf[sizeof(in6_addr)];
    if (!ep.socket_path.empty() || inet_pton(AF_INET, ep.host.c_str(), buf) == 1 ||
        inet_pton(AF_INET6, ep.host.c_str(), buf) == 1) {
        connect_to(ep.host);
        return;
    }
    // getaddrinfo blocks: on the helper thread, its answer posted back to the loop.
    uint64_t gen = generation_;
    helper_.submit([this, alive = std::weak_ptr<bool>(alive_), gen, host = ep.host, ex = io_.get_executor()] {
        struct addrinfo hints = {}, *res = nullptr;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
        std::string address, error;
        if (rc != 0 || !res) error = std::string("could not resolve \"") + host + "\": " + gai_strerror(rc);
        else {
            char text[INET6_ADDRSTRLEN] = {0};
            if (res->ai_family == AF_INET)
                inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, text, sizeof text);
            else
                inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, text, sizeof text);
            address = text;
        }
        if (res) freeaddrinfo(res);
        asio::post(ex, [this, alive, gen, address, error] {
            if (alive.expired() || gen != generation_ || state_ != State::Resolving) return;
            if (!error.empty()) fail(error);
            else connect_to(address);
        });
    });
}

void RedisConnection::connect_to(const std::string& address) {
    const RedisEndpoint& ep = *endpoint_;
    state_ = State::Connecting;
    redisAsyncContext* c = ep.socket_path.empty() ? redisAsyncConnect(address.c_str(), ep.port)
                                                  : redisAsyncConnectUnix(ep.socket_path.c_str());
    if (!c) return fail("out of memory");
    if (c->err) {
        std::string why = c->errstr;
        redisAsyncFree(c);
        return fail(why);
    }
    ctx_ = c;
    c->data = this;
    try {
        events_ = std::make_shared<Events>(io_, c);
    } catch (const std::exception& e) {  // the loop could not watch the socket
        ctx_ = nullptr;
        c->data = nullptr;
        redisAsyncFree(c);
        return fail(e.what());
    }
    c->ev.data = new std::shared_ptr<Events>(events_);
    c->ev.addRead = Events::add_read;
    c->ev.delRead = Events::del_read;
    c->ev.addWrite = Events::add_write;
    c->ev.delWrite = Events::del_write;
    c->ev.cleanup = Events::cleanup;
    // A half-open connection (a partition, a host gone) must fail, or a subscriber would wait
    // for invalidations forever.
    if (ep.socket_path.empty()) redisEnableKeepAlive(&c->c);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    Events::add_write(c->ev.data);  // the connect completes when the socket is writable
    Events::add_read(c->ev.data);

    // AUTH and SELECT go out with the connect; the connection serves once both said OK.
    handshake_left_ = 0;
    auto step = [this](const char* what) {
        return [this, what, gen = generation_](const redisReply* r) {
            if (gen != generation_) return;
            if (!r) return;  // the connection went: on_disconnect reports it
            if (r->type == REDIS_REPLY_ERROR) return handshake_done(false, std::string(what) + ": " + std::string(r->str, r->len));
            if (--handshake_left_ == 0) handshake_done(true, "");
        };
    };
    std::vector<std::string> ping{"PING"};
    if (!ep.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!ep.user.empty()) auth.push_back(ep.user);
        auth.push_back(ep.password);
        handshake_left_++;
        send(auth, step("AUTH"));
    }
    if (ep.db) {
        handshake_left_++;
        send({"SELECT", std::to_string(ep.db)}, step("SELECT"));
    }
    handshake_left_++;
    send(ping, step("PING"));
    // A connect or handshake that hangs counts as failed.
    retry_.expires_after(std::max<std::chrono::milliseconds>(timeout_ * 10, std::chrono::milliseconds(1000)));
    retry_.async_wait([this, alive = std::weak_ptr<bool>(alive_), gen = generation_](const boost::system::error_code& ec) {
        if (ec || alive.expired() || gen != generation_ || state_ != State::Connecting) return;
        fail("connection timed out");
    });
}

void RedisConnection::on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<RedisConnection*>(ac->data);
    if (!self || status == REDIS_OK) return;
    // hiredis frees the context after this callback.
    self->ctx_ = nullptr;
    self->fail(ac->errstr[0] ? ac->errstr : "could not connect");
}

void RedisConnection::on_disconnect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<RedisConnection*>(ac->data);
    if (!self) return;
    self->ctx_ = nullptr;  // hiredis frees it after this callback
    if (!self->endpoint_) return;
    self->fail(status == REDIS_OK ? "connection closed" : (ac->errstr[0] ? ac->errstr : "connection lost"));
}

void RedisConnection::handshake_done(bool ok, const std::string& why) {
    if (!ok) return fail(why);
    state_ = State::Ready;
    retry_.cancel();
    failures_ = 0;
    outstanding_ = 0;
    last_reply_ = std::chrono::steady_clock::now();
    if (reported_down_ || !subscribed_once_) log_(false, "pg_rproxy: Redis cache at " + endpoint_->describe());
    reported_down_ = false;
    if (!channel_.empty() && ctx_) {
        auto* p = new Pending{[this, gen = generation_](const redisReply* r) {
                                  if (gen != generation_ || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
                                  const redisReply* kind = r->element[0];
                                  const redisReply* body = r->element[2];
                                  std::string_view k(kind->str, kind->len);
                                  // Confirmed: from here on nothing is missed; before it anything may have been
                                  // (a broken connection, a restarted worker).
                                  if (k == "subscribe") {
                                      if (on_resubscribed_) on_resubscribed_();
                                      return;
                                  }
                                  if (k != "message" || body->type != REDIS_REPLY_STRING) return;
                                  on_message_(std::string_view(body->str, body->len));
                              },
                              generation_, true};
        const char* argv[] = {"SUBSCRIBE", channel_.c_str()};
        size_t lens[] = {9, channel_.size()};
        redisAsyncCommandArgv(ctx_, subscription_callback, p, 2, argv, lens);
    }
    subscribed_once_ = true;
}

void RedisConnection::fail(const std::string& why) {
    if (count_failure_) count_failure_();
    if (!reported_down_) log_(true, "pg_rproxy: Redis cache at " + (endpoint_ ? endpoint_->describe() : std::string("?")) +
                                        " unavailable (" + why + "); serving without it");
    reported_down_ = true;
    drop();
    if (endpoint_) arm_backoff();
}

void RedisConnection::drop() {
    ++generation_;
    if (ctx_) {
        redisAsyncContext* c = ctx_;
        ctx_ = nullptr;
        c->data = nullptr;   // its callbacks no longer reach this connection
        redisAsyncFree(c);   // every pending command gets its nullptr answer
    }
    events_.reset();
    state_ = endpoint_ ? State::Backoff : State::Off;
    outstanding_ = 0;
}

void RedisConnection::arm_backoff() {
    state_ = State::Backoff;
    failures_ = std::min(failures_ + 1, 6);
    auto delay = std::chrono::milliseconds(100 << (failures_ - 1));  // 100 ms .. 3.2 s
    retry_.expires_after(delay);
    retry_.async_wait([this, alive = std::weak_ptr<bool>(alive_), gen = generation_](const boost::system::error_code& ec) {
        if (ec || alive.expired() || gen != generation_ || state_ != State::Backoff) return;
        start_connect();
    });
}

bool RedisConnection::send(const std::vector<std::string>& args, std::function<void(const redisReply*)> done) {
    if (!ctx_ || (state_ != State::Ready && state_ != State::Connecting)) {
        if (done) done(nullptr);
        return false;
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* p = new Pending{std::move(done), generation_};
    if (outstanding_ == 0) last_reply_ = std::chrono::steady_clock::now();  // the stall clock starts now
    outstanding_++;
    int rc = redisAsyncCommandArgv(ctx_, command_callback, p, static_cast<int>(argv.size()), argv.data(), lens.data());
    if (rc != REDIS_OK) {
        outstanding_--;
        if (p->done) p->done(nullptr);
        delete p;
        return false;
    }
    return true;
}

bool RedisConnection::send_script(std::string_view body, const std::vector<std::string>& keys,
                                  const std::vector<std::string>& argv, std::function<void(const redisReply*)> done) {
    auto args = script_args("EVALSHA", sha1_of(body), keys, argv);
    return send(args, [this, alive = std::weak_ptr<bool>(alive_), body, keys, argv, done](const redisReply* r) {
        if (is_noscript(r) && !alive.expired()) {
            send(script_args("EVAL", std::string(body), keys, argv), done);
            return;
        }
        if (done) done(r);
    });
}

void RedisConnection::timed_out() {
    if (count_failure_) count_failure_();
    // Answers that stopped coming for much longer than the timeout: the connection is stuck.
    auto stall = std::max<std::chrono::milliseconds>(timeout_ * 20, std::chrono::milliseconds(1000));
    if (state_ == State::Ready && outstanding_ > 0 && std::chrono::steady_clock::now() - last_reply_ > stall)
        fail("no answer for " + std::to_string(stall.count()) + " ms");
}

asio::awaitable<std::optional<RedisReply>> RedisConnection::call(std::vector<std::string> args) {
    if (state_ != State::Ready) co_return std::nullopt;
    struct Wait {
        explicit Wait(asio::io_context& io) : timer(io) {}
        asio::steady_timer timer;
        bool done = false;
        std::optional<RedisReply> reply;
    };
    auto w = std::make_shared<Wait>(io_);
    w->timer.expires_after(timeout_);
    send(args, [w](const redisReply* r) {
        w->done = true;
        if (r) w->reply = RedisReply::from(r);
        w->timer.cancel();
    });
    if (!w->done) {
        boost::system::error_code ec;
        co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!w->done) {
        timed_out();
        co_return std::nullopt;
    }
    if (!w->reply) co_return std::nullopt;  // the connection went: counted there
    if (w->reply->type == RedisReply::Type::Error && w->reply->str.substr(0, 8) != "NOSCRIPT") {
        // OOM, a read-only replica, a denied command: counted, and reported once per kind.
        if (count_failure_) count_failure_();
        std::string kind = w->reply->str.substr(0, w->reply->str.find(' '));
        if (kind != last_error_kind_) log_(true, "pg_rproxy: Redis cache: " + w->reply->str);
        last_error_kind_ = kind;
    }
    co_return std::move(w->reply);
}

asio::awaitable<std::optional<RedisReply>> RedisConnection::script(std::string_view body, std::vector<std::string> keys,
                                                                   std::vector<std::string> argv) {
    std::optional<RedisReply> r = co_await call(script_args("EVALSHA", sha1_of(body), keys, argv));
    if (r && r->type == RedisReply::Type::Error && r->str.substr(0, 8) == "NOSCRIPT")
        r = co_await call(script_args("EVAL", std::string(body), keys, argv));
    if (r && r->type == RedisReply::Type::Error) co_return std::nullopt;
    co_return r;
}

void RedisConnection::subscribe(std::string channel, std::function<void(std::string_view)> on_message,
                                std::function<void()> on_resubscribed) {
    channel_ = std::move(channel);
    on_message_ = std::move(on_message);
    on_resubscribed_ = std::move(on_resubscribed);
}

}  // namespace rproxy
