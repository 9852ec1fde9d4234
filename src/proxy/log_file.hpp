// An append-only log file that the event loop writes to without ever waiting on the disk: lines go
// into an in-memory queue that a dedicated thread writes out. Shared by the message log and the
// audit log. Every worker process may write the same path, so each write() call carries whole
// lines only (O_APPEND makes each call land at the end, whole), and rotation by size is
// coordinated between processes with flock() on path + ".lock".
#pragma once
#include "core/pure_layer.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace rproxy {

class LogFile {
public:
    // name says which log it is in error reports ("message log", "audit log").
    explicit LogFile(std::string name);
    // Stops the thread after it has written what is queued.
    ~LogFile();
    LogFile(const LogFile&) = delete;
    LogFile& operator=(const LogFile&) = delete;

    // Creates the writer thread (which blocks every signal). Call before the process unblocks
    // signals: in the Worker constructor.
    void start();

    // From the loop, at start and after each reload. Empty path: off (what is queued is still
    // written where it was meant to go). rotate_bytes: the file is rotated before a write would
    // take it past this size (0: never). keep_files: how many rotated files path.1 .. path.N are
    // kept (0: the full file is removed).
    void configure(const std::string& path, uint64_t rotate_bytes, int keep_files);
    bool enabled() const { return enabled_; }
    const std::string& path() const { return path_; }

    // Queues line (which ends with its '\n'); never waits for the disk. Beyond kMaxQueued bytes
    // queued, lines are dropped and counted.
    void write(std::string_view line);

    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
    // The latest failure to open or write, once, for the loop to log ("" when there is none new);
    // a cheap check first: error_pending().
    bool error_pending() const { return error_pending_.load(std::memory_order_relaxed); }
    std::string take_error();

    // Waits until everything queued so far is written (tests, shutdown; never on the loop).
    void flush();

    static constexpr std::size_t kMaxQueued = 64 * 1024 * 1024;
    // How long the thread lets lines gather after the first, and how many bytes end the wait.
    static constexpr std::chrono::milliseconds kGatherDelay{2};
    static constexpr std::size_t kGatherBytes = 64 * 1024;

private:
    struct Target {
        std::string path;
        uint64_t rotate_bytes = 0;
        int keep_files = 0;
    };
    struct Batch {
        Target target;
        std::string data;
    };
    void run();
    void write_batch(const Target& t, std::string_view data);
    void write_chunk(const Target& t, std::string_view chunk);
    bool ensure_open(const Target& t);
    void close_file();
    void rotate_locked(const Target& t);
    void fail(const std::string& what, int err);

    const std::string name_;
    // Loop side.
    bool enabled_ = false;
    std::string path_;

    std::mutex mu_;
    std::condition_variable wake_;     // the thread: something to write, or stop
    std::condition_variable written_;  // flush(): the thread wrote a round
    Target current_;                   // where queued_ goes
    std::string queued_;
    std::vector<Batch> sealed_;        // queued for an earlier target, before a reconfiguration
    std::size_t queued_bytes_ = 0;     // in queued_ and sealed_
    uint64_t enqueued_rounds_ = 0;     // bumped by write(); the thread records the last it took
    uint64_t done_rounds_ = 0;
    int flushing_ = 0;  // flush() calls waiting: no gathering delay
    bool stopping_ = false;
    std::thread thread_;
    std::string error_;

    std::atomic<uint64_t> dropped_{0};
    std::atomic<uint64_t> write_errors_{0};
    std::atomic<bool> error_pending_{false};

    // Writer thread only.
    int fd_ = -1;
    std::string open_path_;
    int lock_fd_ = -1;  // path + ".lock", while rotation is on
    std::string lock_path_;
    bool failing_ = false;  // the last attempt failed: one report until it works again
};

}  // namespace rproxy
