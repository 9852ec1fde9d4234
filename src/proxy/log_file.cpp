#include "proxy/log_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace rproxy {

namespace {

// One write() call at most: whole lines, so that other processes' lines never land inside ours.
constexpr std::size_t kChunk = 256 * 1024;
// A burst may grow the thread's buffer; it is not kept that large.
constexpr std::size_t kKeepCapacity = 1024 * 1024;

std::string describe(int err) { return std::error_code(err, std::generic_category()).message(); }

}  // namespace

LogFile::LogFile(std::string name) : name_(std::move(name)) {}

LogFile::~LogFile() {
    if (thread_.joinable()) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stopping_ = true;
        }
        wake_.notify_one();
        thread_.join();
    }
    close_file();
}

void LogFile::start() {
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void LogFile::configure(const std::string& path, uint64_t rotate_bytes, int keep_files) {
    Target t{path, rotate_bytes, keep_files < 0 ? 0 : keep_files};
    std::lock_guard<std::mutex> lk(mu_);
    if (t.path != current_.path || t.rotate_bytes != current_.rotate_bytes || t.keep_files != current_.keep_files) {
        // What was queued goes where it was meant to go when it was written.
        if (!queued_.empty()) sealed_.push_back(Batch{current_, std::exchange(queued_, std::string())});
        current_ = std::move(t);
    }
    enabled_ = !path.empty();
    path_ = path;
}

void LogFile::write(std::string_view line) {
    if (!enabled_) return;
    bool wake;
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (queued_bytes_ + line.size() > kMaxQueued) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        wake = queued_bytes_ == 0 || (queued_bytes_ < kGatherBytes && queued_bytes_ + line.size() >= kGatherBytes);
        queued_.append(line);
        queued_bytes_ += line.size();
        ++enqueued_rounds_;
    }
    // The thread takes everything queued at once: it is woken by the first line after a take, and
    // again when a batch is full.
    if (wake) wake_.notify_one();
}

std::string LogFile::take_error() {
    std::lock_guard<std::mutex> lk(mu_);
    error_pending_.store(false, std::memory_order_relaxed);
    return std::exchange(error_, std::string());
}

void LogFile::flush() {
    std::unique_lock<std::mutex> lk(mu_);
    if (!thread_.joinable()) return;
    uint64_t want = enqueued_rounds_;
    ++flushing_;
    wake_.notify_one();
    written_.wait(lk, [&] { return done_rounds_ >= want; });
    --flushing_;
}

void LogFile::run() {
    // Signals are the main thread's: PostgreSQL's handlers must never run here.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    std::vector<Batch> sealed;
    std::string data;
    Target target;
    for (;;) {
        uint64_t round;
        {
            std::unique_lock<std::mutex> lk(mu_);
            wake_.wait(lk, [&] { return stopping_ || queued_bytes_ > 0; });
            if (queued_bytes_ == 0) break;  // stopping, and everything is written
            // Lines that come close together are written together: one wakeup and one write()
            // for a burst of statements, not one each. A flush, a stop or a full batch cuts it short.
            wake_.wait_for(lk, kGatherDelay,
                           [&] { return stopping_ || flushing_ > 0 || queued_bytes_ >= kGatherBytes; });
            sealed.swap(sealed_);
            data.swap(queued_);
            target = current_;
            queued_bytes_ = 0;
            round = enqueued_rounds_;
        }
        for (const Batch& b : sealed) write_batch(b.target, b.data);
        sealed.clear();
        write_batch(target, data);
        if (data.capacity() > kKeepCapacity) std::string().swap(data);
        else data.clear();
        {
            std::lock_guard<std::mutex> lk(mu_);
            done_rounds_ = round;
        }
        written_.notify_all();
    }
    {
        std::lock_guard<std::mutex> lk(mu_);
        done_rounds_ = enqueued_rounds_;
    }
    written_.notify_all();
}

void LogFile::fail(const std::string& what, int err) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    if (failing_) return;  // reported once until a write succeeds again
    failing_ = true;
    std::lock_guard<std::mutex> lk(mu_);
    error_ = name_ + ": " + what + ": " + describe(err);
    error_pending_.store(true, std::memory_order_relaxed);
}

void LogFile::close_file() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    open_path_.clear();
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
    lock_path_.clear();
}

// The file at t.path, opened again when it is not the one at that path any more: another process
// rotated it, or an operator moved it away.
bool LogFile::ensure_open(const Target& t) {
    if (fd_ >= 0 && open_path_ == t.path) {
        struct stat at_path, ours;
        if (::stat(t.path.c_str(), &at_path) == 0 && ::fstat(fd_, &ours) == 0 && at_path.st_dev == ours.st_dev &&
            at_path.st_ino == ours.st_ino)
            return true;
        ::close(fd_);
        fd_ = -1;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(t.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        fail("could not open \"" + t.path + "\"", errno);
        return false;
    }
    open_path_ = t.path;
    return true;
}

// Under the lock file's flock: path.(N-1) -> path.N ... path -> path.1, and a new file at path.
void LogFile::rotate_locked(const Target& t) {
    for (int i = t.keep_files - 1; i >= 1; --i) {
        std::string from = t.path + "." + std::to_string(i), to = t.path + "." + std::to_string(i + 1);
        if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) fail("could not rotate \"" + from + "\"", errno);
    }
    int rc = t.keep_files >= 1 ? ::rename(t.path.c_str(), (t.path + ".1").c_str()) : ::unlink(t.path.c_str());
    if (rc != 0 && errno != ENOENT) fail("could not rotate \"" + t.path + "\"", errno);
    ::close(fd_);
    fd_ = -1;
    ensure_open(t);
}

void LogFile::write_batch(const Target& t, std::string_view data) {
    if (t.path.empty()) return;  // queued while on, turned off since: the operator asked for nothing more
    std::size_t limit = kChunk;
    if (t.rotate_bytes > 0 && t.rotate_bytes < limit) limit = static_cast<std::size_t>(t.rotate_bytes);
    std::size_t pos = 0;
    while (pos < data.size()) {
        std::size_t end = pos + limit;
        if (end >= data.size()) {
            end = data.size();
        } else {
            std::size_t nl = data.rfind('\n', end - 1);
            if (nl == std::string_view::npos || nl < pos) nl = data.find('\n', end);  // one line longer than limit
            end = nl == std::string_view::npos ? data.size() : nl + 1;
        }
        write_chunk(t, data.substr(pos, end - pos));
        pos = end;
    }
}

void LogFile::write_chunk(const Target& t, std::string_view chunk) {
    // Rotation is decided and done under the lock every writer of this path takes, so that the
    // size seen is the size written to, and no process writes into a file being renamed away.
    bool locked = false;
    if (t.rotate_bytes > 0) {
        if (lock_fd_ >= 0 && lock_path_ != t.path) {
            ::close(lock_fd_);
            lock_fd_ = -1;
        }
        if (lock_fd_ < 0) {
            lock_fd_ = ::open((t.path + ".lock").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            lock_path_ = t.path;
        }
        if (lock_fd_ < 0) {
            fail("could not open \"" + t.path + ".lock\"", errno);
            return;
        }
        int rc;
        while ((rc = ::flock(lock_fd_, LOCK_EX)) != 0 && errno == EINTR) {
        }
        locked = rc == 0;
    }
    if (ensure_open(t)) {
        if (t.rotate_bytes > 0) {
            struct stat st;
            if (::fstat(fd_, &st) == 0 && st.st_size > 0 && uint64_t(st.st_size) + chunk.size() > t.rotate_bytes)
                rotate_locked(t);
        }
        const char* p = chunk.data();
        std::size_t left = chunk.size();
        bool ok = fd_ >= 0;
        while (ok && left > 0) {
            ssize_t n = ::write(fd_, p, left);
            if (n < 0) {
                if (errno == EINTR) continue;
                fail("could not write to \"" + t.path + "\"", errno);
                ok = false;
                break;
            }
            p += n;
            left -= static_cast<std::size_t>(n);
        }
        if (ok) failing_ = false;
    }
    if (locked) ::flock(lock_fd_, LOCK_UN);
}

}  // namespace rproxy
