#include "proxy/parked_clients.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace rproxy {

namespace asio = boost::asio;

ParkedClients::ParkedClients(asio::io_context& io) : epoll_(io) {
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    epoll_.assign(fd);
    arm();
}

ParkedClients::~ParkedClients() = default;  // the descriptor closes with epoll_

bool ParkedClients::park(int fd, Client* client) {
    epoll_event ev{};
    // One-shot: a socket reports once and is then left alone until it is taken out.
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.ptr = client;
    return ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void ParkedClients::unpark(int fd) {
    epoll_event ev{};  // ignored by DEL, but kernels before 2.6.9 wanted one
    ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_DEL, fd, &ev);
}

void ParkedClients::arm() {
    epoll_.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
        if (ec) return;  // closed: the worker is going away
        deliver();
        arm();
    });
}

void ParkedClients::deliver() {
    constexpr int kBatch = 64;
    epoll_event events[kBatch];
    for (;;) {
        int n = ::epoll_wait(epoll_.native_handle(), events, kBatch, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        // woken() only schedules the session's resumption; no client leaves or is destroyed
        // while this batch is delivered.
        for (int i = 0; i < n; ++i) {
            auto* client = static_cast<Client*>(events[i].data.ptr);
            unpark(client->parked_fd());
            client->woken();
        }
        if (n < kBatch) return;
    }
}

}  // namespace rproxy
