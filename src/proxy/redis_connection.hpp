// One connection to Redis for the second cache level: hiredis's asynchronous client with its socket
// watched by the worker's Asio loop, so nothing ever blocks the loop. Host names are resolved on the
// helper thread. A broken or stalled connection is dropped and opened again with backoff; meanwhile
// every command fails at once, and the caller goes on without Redis.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/redis_url.hpp"
#include "proxy/blocking_helper.hpp"

struct redisAsyncContext;
struct redisReply;

namespace rproxy {

// An owned copy of a reply (hiredis frees its own once the callback returns).
struct RedisReply {
    enum class Type { Nil, String, Integer, Array, Status, Error } type = Type::Nil;
    std::string str;  // String, Status, Error
    long long integer = 0;
    std::vector<RedisReply> elements;
    static RedisReply from(const redisReply* r);
};

class RedisConnection {
public:
    using Log = std::function<void(bool warning, const std::string& message)>;
    RedisConnection(boost::asio::io_context& io, BlockingHelper& helper, Log log, std::function<void()> count_failure);
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    // Connects (again) when the endpoint changed; nullopt: off.
    void configure(const std::optional<RedisEndpoint>& endpoint, std::chrono::milliseconds timeout);
    bool ready() const { return state_ == State::Ready; }

    // A command whose answer is waited for, at most the timeout: nullopt on any failure (counted).
    boost::asio::awaitable<std::optional<RedisReply>> call(std::vector<std::string> args);
    // EVALSHA, falling back to EVAL when Redis does not know the script yet.
    boost::asio::awaitable<std::optional<RedisReply>> script(std::string_view body, std::vector<std::string> keys,
                                                             std::vector<std::string> argv);
    // Fire and forget: done (may be empty) gets the reply, or nullptr on failure.
    bool send(const std::vector<std::string>& args, std::function<void(const redisReply*)> done);
    bool send_script(std::string_view body, const std::vector<std::string>& keys, const std::vector<std::string>& argv,
                     std::function<void(const redisReply*)> done);

    // Turns this connection into a subscriber of channel: on_message gets every message, and
    // on_resubscribed is called each time Redis confirms the subscription (messages sent before
    // may have been missed: while the connection was broken, or the worker was not running).
    void subscribe(std::string channel, std::function<void(std::string_view)> on_message,
                   std::function<void()> on_resubscribed);

    struct Events;  // hiredis's event hooks on the Asio loop

private:
    enum class State { Off, Resolving, Connecting, Ready, Backoff };
    void start_connect();
    void connect_to(const std::string& address);
    void handshake_done(bool ok, const std::string& why);
    void fail(const std::string& why);
    void drop();
    void arm_backoff();
    void timed_out();
    static void on_connect(const redisAsyncContext* ac, int status);
    static void command_callback(redisAsyncContext* ac, void* reply, void* data) noexcept;
    static void subscription_callback(redisAsyncContext* ac, void* reply, void* data) noexcept;
    static void on_disconnect(const redisAsyncContext* ac, int status);

    boost::asio::io_context& io_;
    BlockingHelper& helper_;
    Log log_;
    std::function<void()> count_failure_;
    std::optional<RedisEndpoint> endpoint_;
    std::chrono::milliseconds timeout_{50};
    State state_ = State::Off;
    redisAsyncContext* ctx_ = nullptr;
    std::shared_ptr<Events> events_;
    uint64_t generation_ = 0;  // bumped on every drop: late answers of an older connection are ignored
    int handshake_left_ = 0;
    int failures_ = 0;         // in a row, for the backoff
    bool reported_down_ = false;
    std::string last_error_kind_;  // of the last error answer logged
    boost::asio::steady_timer retry_;
    std::chrono::steady_clock::time_point last_reply_;
    int outstanding_ = 0;
    std::string channel_;
    std::function<void(std::string_view)> on_message_;
    std::function<void()> on_resubscribed_;
    bool subscribed_once_ = false;  // for the log: the first connection is not a recovery
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace rproxy
