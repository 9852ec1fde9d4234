// ParkedClients with real sockets: a parked socket is reported once when its peer writes or hangs
// up, never after it was taken out, and the one epoll wait serves many sockets.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "proxy/parked_clients.hpp"

using rproxy::ParkedClients;

namespace {

struct Pair {
    int parked = -1, peer = -1;
    Pair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        parked = fds[0];
        peer = fds[1];
    }
    ~Pair() {
        if (parked >= 0) ::close(parked);
        if (peer >= 0) ::close(peer);
    }
};

struct Client : ParkedClients::Client {
    int fd;
    int wakes = 0;
    explicit Client(int f) : fd(f) {}
    void woken() override { ++wakes; }
    int parked_fd() const override { return fd; }
};

void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
}

// One socket parked in a fresh set.
struct OneParked : ::testing::Test {
    boost::asio::io_context io;
    ParkedClients parked{io};
    Pair p;
    Client c{p.parked};
    void SetUp() override { ASSERT_TRUE(parked.park(p.parked, &c)); }
    void run() { run_for(io, std::chrono::milliseconds(50)); }
};

}  // namespace

TEST_F(OneParked, WakesOnceWhenThePeerWrites) {
    run();
    EXPECT_EQ(c.wakes, 0) << "nothing sent yet";
    ASSERT_EQ(::write(p.peer, "Q", 1), 1);
    run();
    EXPECT_EQ(c.wakes, 1);
    ASSERT_EQ(::write(p.peer, "Q", 1), 1);
    run();
    EXPECT_EQ(c.wakes, 1) << "out of the set once woken";
    ASSERT_TRUE(parked.park(p.parked, &c)) << "and it can park again, with data already waiting";
    run();
    EXPECT_EQ(c.wakes, 2);
}

TEST_F(OneParked, WakesWhenThePeerHangsUp) {
    ::close(p.peer);
    p.peer = -1;
    run();
    EXPECT_EQ(c.wakes, 1);
}

TEST_F(OneParked, UnparkedSocketsAreNotReported) {
    parked.unpark(p.parked);
    ASSERT_EQ(::write(p.peer, "Q", 1), 1);
    run();
    EXPECT_EQ(c.wakes, 0);
}

TEST(ParkedClients, ManySocketsInBatches) {
    boost::asio::io_context io;
    ParkedClients parked(io);
    std::vector<Pair> pairs(300);  // more than one epoll_wait batch
    std::vector<Client> clients;
    clients.reserve(pairs.size());
    for (auto& p : pairs) {
        clients.emplace_back(p.parked);
        ASSERT_TRUE(parked.park(p.parked, &clients.back()));
    }
    for (std::size_t i = 0; i < pairs.size(); i += 2) ASSERT_EQ(::write(pairs[i].peer, "Q", 1), 1);
    run_for(io, std::chrono::milliseconds(100));
    for (std::size_t i = 0; i < pairs.size(); ++i) EXPECT_EQ(clients[i].wakes, i % 2 == 0 ? 1 : 0) << i;
}
