// Idle clients whose sessions hold nothing but a descriptor: the sockets wait in an epoll set of
// their own, one Asio wait for all of them, instead of an Asio registration and a pending
// operation each.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

namespace rproxy {

class ParkedClients {
public:
    class Client {
    public:
        // The socket became readable or hung up. Called on the loop, once the socket is out of
        // the set.
        virtual void woken() = 0;
        virtual int parked_fd() const = 0;

    protected:
        ~Client() = default;
    };

    explicit ParkedClients(boost::asio::io_context& io);
    ~ParkedClients();
    ParkedClients(const ParkedClients&) = delete;
    ParkedClients& operator=(const ParkedClients&) = delete;

    // False when the kernel refuses (out of memory): the caller keeps waiting its own way.
    bool park(int fd, Client* client);
    // The client leaves the set without being woken (it is wanted for something else).
    void unpark(int fd);

private:
    void arm();
    void deliver();

    boost::asio::posix::stream_descriptor epoll_;
};

}  // namespace rproxy
