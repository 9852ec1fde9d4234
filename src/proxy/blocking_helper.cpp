#include "proxy/blocking_helper.hpp"

namespace rproxy {

BlockingHelper::BlockingHelper() : thread_([this] { loop(); }) {}

BlockingHelper::~BlockingHelper() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

void BlockingHelper::submit(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
}

void BlockingHelper::loop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job();
    }
}

}  // namespace rproxy
