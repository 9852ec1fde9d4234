// The listening sockets of one worker. Every worker binds the same port with SO_REUSEPORT and the
// kernel spreads new connections across them.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <string>
#include <vector>

namespace rproxy {

// Resolves pg_rproxy.listen_addresses ("localhost", "*", names, numeric, comma separated). Runs
// before the event loop starts, so a name lookup here blocks nothing. Throws on an unusable entry.
std::vector<boost::asio::ip::tcp::endpoint> listen_endpoints(const std::string& addresses, int port);

// Opens, binds (SO_REUSEADDR + SO_REUSEPORT) and listens. Throws std::system_error with the address.
boost::asio::ip::tcp::acceptor open_listener(boost::asio::io_context& io,
                                             const boost::asio::ip::tcp::endpoint& ep);

}  // namespace rproxy
