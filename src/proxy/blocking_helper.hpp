// One helper thread for the few libpq/libc calls that block and have no asynchronous form in
// PostgreSQL 15's libpq: host name resolution and PQcancel. It never touches PostgreSQL, and it is
// created before the worker unblocks signals so it never runs a signal handler. Jobs hand their
// results back to the loop themselves (asio::post to its executor).
#pragma once
#include "core/pure_layer.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace rproxy {

class BlockingHelper {
public:
    BlockingHelper();
    ~BlockingHelper();  // joins: call before the io_context that results are posted to goes away
    BlockingHelper(const BlockingHelper&) = delete;
    BlockingHelper& operator=(const BlockingHelper&) = delete;

    void submit(std::function<void()> job);

private:
    void loop();
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace rproxy
