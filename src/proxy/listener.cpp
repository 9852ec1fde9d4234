#include "proxy/listener.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "core/text_lists.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace rproxy {

std::vector<tcp::endpoint> listen_endpoints(const std::string& addresses, int port) {
    std::vector<tcp::endpoint> out;
    auto add = [&](const tcp::endpoint& ep) {
        if (std::find(out.begin(), out.end(), ep) == out.end()) out.push_back(ep);
    };
    for (const std::string& name : split_names(addresses)) {
        if (name == "*") {
            add(tcp::endpoint(asio::ip::address_v4::any(), static_cast<unsigned short>(port)));
            add(tcp::endpoint(asio::ip::address_v6::any(), static_cast<unsigned short>(port)));
            continue;
        }
        struct addrinfo hints = {}, *res = nullptr;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        int rc = getaddrinfo(name.c_str(), nullptr, &hints, &res);
        if (rc != 0) {
            throw std::runtime_error("could not translate host name \"" + name + "\" in pg_rproxy.listen_addresses: " +
                                     gai_strerror(rc));
        }
        for (auto* ai = res; ai; ai = ai->ai_next) {
            tcp::endpoint ep;
            std::memcpy(ep.data(), ai->ai_addr, ai->ai_addrlen);
            ep.port(static_cast<unsigned short>(port));
            add(ep);
        }
        freeaddrinfo(res);
    }
    return out;
}

tcp::acceptor open_listener(asio::io_context& io, const tcp::endpoint& ep) {
    tcp::acceptor acc(io);
    try {
        acc.open(ep.protocol());
        acc.set_option(tcp::acceptor::reuse_address(true));
        int one = 1;
        if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            throw std::system_error(errno, std::generic_category(), "setsockopt(SO_REUSEPORT)");
        if (ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true));
        acc.bind(ep);
        acc.listen(asio::socket_base::max_listen_connections);
    } catch (const std::system_error& e) {
        throw std::runtime_error("could not listen on " + ep.address().to_string() + " port " +
                                 std::to_string(ep.port()) + ": " + e.what());
    }
    return acc;
}

}  // namespace rproxy
