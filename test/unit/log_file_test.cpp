// LogFile: lines queued on the caller's thread reach the file through the writer thread, whole;
// rotation by size keeps N files; several writers of one path (threads or processes) rotate
// together without losing or splitting a line.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proxy/log_file.hpp"

using rproxy::LogFile;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path dir;
    TempDir() {
        char tmpl[] = "/tmp/log_file_test.XXXXXX";
        dir = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(dir); }
    std::string path(const std::string& name) const { return (dir / name).string(); }
};

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) {
            out.push_back(text.substr(pos));  // no final newline: a split line, which the tests reject
            break;
        }
        out.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

// "<writer> <seq> <padding>"
std::string numbered(char writer, int seq, std::size_t pad) {
    char head[32];
    std::snprintf(head, sizeof head, "%c %06d ", writer, seq);
    return head + std::string(pad, 'x') + "\n";
}

// The files of a rotated log, oldest first: path.N .. path.1, path.
std::vector<std::string> rotated_files(const std::string& path, int max) {
    std::vector<std::string> out;
    for (int i = max; i >= 1; --i) {
        std::string p = path + "." + std::to_string(i);
        if (fs::exists(p)) out.push_back(p);
    }
    if (fs::exists(path)) out.push_back(path);
    return out;
}

}  // namespace

TEST(LogFile, WritesArriveWithMode0600) {
    TempDir t;
    std::string path = t.path("log");
    LogFile log("message log");
    log.start();
    log.configure(path, 0, 0);
    EXPECT_TRUE(log.enabled());
    std::string expected;
    for (int i = 0; i < 1000; ++i) {
        std::string line = numbered('a', i, i % 50);
        log.write(line);
        expected += line;
    }
    log.flush();
    EXPECT_EQ(slurp(path), expected);
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(log.dropped(), 0u);
    EXPECT_EQ(log.write_errors(), 0u);
}

TEST(LogFile, OffWhenPathEmpty) {
    TempDir t;
    std::string path = t.path("log");
    LogFile log("message log");
    log.start();
    log.configure("", 0, 0);
    EXPECT_FALSE(log.enabled());
    log.write("not written\n");
    log.flush();
    log.configure(path, 0, 0);
    log.write("one\n");
    log.flush();
    log.configure("", 0, 0);
    EXPECT_FALSE(log.enabled());
    log.write("two\n");
    log.flush();
    EXPECT_EQ(slurp(path), "one\n");
}

TEST(LogFile, QueuedLinesGoWhereTheyWereMeantToGo) {
    TempDir t;
    LogFile log("audit log");
    log.configure(t.path("first"), 0, 0);
    log.write("for the first\n");
    log.configure(t.path("second"), 0, 0);
    log.write("for the second\n");
    log.start();  // the thread starts with both queued
    log.flush();
    EXPECT_EQ(slurp(t.path("first")), "for the first\n");
    EXPECT_EQ(slurp(t.path("second")), "for the second\n");
}

TEST(LogFile, RotationKeepsNFilesOfWholeLines) {
    TempDir t;
    std::string path = t.path("log");
    LogFile log("message log");
    log.start();
    log.configure(path, 1000, 3);
    const int n = 400;
    for (int i = 0; i < n; ++i) {
        log.write(numbered('a', i, 40));
        if (i % 7 == 0) log.flush();  // batches of several sizes
    }
    log.flush();
    EXPECT_TRUE(fs::exists(path + ".1"));
    EXPECT_TRUE(fs::exists(path + ".3"));
    EXPECT_FALSE(fs::exists(path + ".4"));
    std::vector<std::string> all;
    for (const auto& f : rotated_files(path, 10)) {
        std::string text = slurp(f);
        EXPECT_LE(text.size(), 1000u) << f;
        ASSERT_FALSE(text.empty()) << f;
        EXPECT_EQ(text.back(), '\n') << f;
        for (auto& l : lines_of(text)) all.push_back(l);
    }
    // What is kept is the newest lines, in order, each whole.
    ASSERT_FALSE(all.empty());
    int first = std::atoi(all.front().substr(2, 6).c_str());
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i] + "\n", numbered('a', first + int(i), 40));
    EXPECT_EQ(first + int(all.size()), n);
    EXPECT_EQ(log.write_errors(), 0u);
}

TEST(LogFile, KeepZeroFilesStartsOver) {
    TempDir t;
    std::string path = t.path("log");
    LogFile log("message log");
    log.start();
    log.configure(path, 100, 0);
    for (int i = 0; i < 10; ++i) {
        log.write(numbered('a', i, 30));
        log.flush();
    }
    EXPECT_FALSE(fs::exists(path + ".1"));
    EXPECT_LE(slurp(path).size(), 100u);
    EXPECT_EQ(lines_of(slurp(path)).back() + "\n", numbered('a', 9, 30));
}

namespace {

// Every writer's lines, each whole, each once and in order, in files no larger than the limit.
void check_writers(const std::string& path, std::size_t limit, const std::map<char, int>& counts, std::size_t pad) {
    std::map<char, int> next;
    for (const auto& f : rotated_files(path, 1000)) {
        std::string text = slurp(f);
        EXPECT_LE(text.size(), limit) << f;
        if (!text.empty()) EXPECT_EQ(text.back(), '\n') << f;
        for (const auto& l : lines_of(text)) {
            ASSERT_EQ(l.size(), 9 + pad) << "a split or merged line in " << f << ": " << l;
            char w = l[0];
            int seq = std::atoi(l.substr(2, 6).c_str());
            ASSERT_EQ(l + "\n", numbered(w, seq, pad)) << f;
            EXPECT_EQ(seq, next[w]) << "writer " << w << " in " << f;
            next[w] = seq + 1;
        }
    }
    for (const auto& [w, n] : counts) EXPECT_EQ(next[w], n) << "writer " << w;
}

}  // namespace

TEST(LogFile, TwoWritersOfOnePathRotateWithoutLosingOrSplittingLines) {
    TempDir t;
    std::string path = t.path("log");
    const int n = 3000;
    const std::size_t limit = 4096, pad = 60;
    auto writer = [&](char w) {
        LogFile log("message log");
        log.start();
        log.configure(path, limit, 300);
        for (int i = 0; i < n; ++i) {
            log.write(numbered(w, i, pad));
            if (i % 97 == 0) log.flush();
        }
    };  // the destructor writes what is left
    std::thread a(writer, 'a'), b(writer, 'b');
    a.join();
    b.join();
    EXPECT_TRUE(fs::exists(path + ".1"));
    check_writers(path, limit, {{'a', n}, {'b', n}}, pad);
}

TEST(LogFile, WriterProcessesOfOnePathRotateTogether) {
    TempDir t;
    std::string path = t.path("log");
    const int n = 2000;
    const std::size_t limit = 8192, pad = 100;
    std::vector<pid_t> children;
    for (char w : {'p', 'q', 'r'}) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            {
                LogFile log("message log");
                log.start();
                log.configure(path, limit, 300);
                for (int i = 0; i < n; ++i) {
                    log.write(numbered(w, i, pad));
                    if (i % 53 == 0) log.flush();
                }
            }
            _exit(0);
        }
        children.push_back(pid);
    }
    for (pid_t c : children) {
        int status = 0;
        waitpid(c, &status, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    check_writers(path, limit, {{'p', n}, {'q', n}, {'r', n}}, pad);
}

TEST(LogFile, AFileMovedAwayIsOpenedAgain) {
    TempDir t;
    std::string path = t.path("log");
    LogFile log("message log");
    log.start();
    log.configure(path, 0, 0);
    log.write("before\n");
    log.flush();
    fs::rename(path, path + ".old");
    log.write("after\n");
    log.flush();
    EXPECT_EQ(slurp(path + ".old"), "before\n");
    EXPECT_EQ(slurp(path), "after\n");
}

TEST(LogFile, OpenFailureIsCountedAndReportedOnce) {
    TempDir t;
    LogFile log("message log");
    log.start();
    log.configure(t.path("no/such/dir/log"), 0, 0);
    log.write("lost\n");
    log.flush();
    log.write("lost too\n");
    log.flush();
    EXPECT_EQ(log.write_errors(), 2u);
    ASSERT_TRUE(log.error_pending());
    std::string e = log.take_error();
    EXPECT_NE(e.find("message log: could not open"), std::string::npos) << e;
    EXPECT_NE(e.find("No such file"), std::string::npos) << e;
    EXPECT_FALSE(log.error_pending());
    EXPECT_EQ(log.take_error(), "");
}

TEST(LogFile, BeyondTheBoundLinesAreDropped) {
    TempDir t;
    LogFile log("message log");  // not started: nothing drains the queue
    log.configure(t.path("log"), 0, 0);
    std::string mib(1024 * 1024 - 1, 'x');
    mib += '\n';
    for (std::size_t i = 0; i < LogFile::kMaxQueued / mib.size() + 3; ++i) log.write(mib);
    EXPECT_EQ(log.dropped(), 3u);
}
