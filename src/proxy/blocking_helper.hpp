// One helper thread for the few libpq/libc calls that block and have no asynchronous form in
// PostgreSQL 15's libpq: host name resolution and PQcancel. It never touches PostgreSQL, and it is
// created before the worker unblocks signals so it never runs a signal handler.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace rproxy {

class BlockingHelper {
public:
    BlockingHelper();
    ~BlockingHelper();  // joins: call before the io_context that results are posted to goes away
    BlockingHelper(const BlockingHelper&) = delete;
    BlockingHelper& operator=(const BlockingHelper&) = delete;

    void submit(std::function<void()> job);

    // Runs fn on the helper thread and resumes the calling coroutine with its result.
    template <class F>
    boost::asio::awaitable<std::invoke_result_t<F>> run(F fn) {
        using R = std::invoke_result_t<F>;
        auto ex = co_await boost::asio::this_coro::executor;
        struct State {
            explicit State(boost::asio::any_io_executor e)
                : done(e, boost::asio::steady_timer::time_point::max()) {}
            boost::asio::steady_timer done;
            std::optional<R> result;
        };
        auto st = std::make_shared<State>(ex);
        submit([st, ex, fn = std::move(fn)]() mutable {
            R r = fn();
            boost::asio::post(ex, [st, r = std::move(r)]() mutable {
                st->result = std::move(r);
                st->done.cancel();
            });
        });
        boost::system::error_code ec;
        while (!st->result) co_await st->done.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        co_return std::move(*st->result);
    }

private:
    void loop();
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace rproxy
