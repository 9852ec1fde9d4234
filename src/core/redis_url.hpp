// pg_rproxy.redis: where the second cache level lives. redis://[user:password@]host:port[/db] or
// unix:///path/redis.sock[?db=N]. The password is kept for AUTH and never shown: describe() is
// what the log says.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace rproxy {

struct RedisEndpoint {
    std::string host;  // empty with a socket path
    int port = 6379;
    std::string socket_path;
    std::string user;  // ACL user (Redis 6+); empty: AUTH with the password alone
    std::string password;
    int db = 0;

    bool operator==(const RedisEndpoint& o) const {
        return host == o.host && port == o.port && socket_path == o.socket_path && user == o.user &&
               password == o.password && db == o.db;
    }
    // redis://user:***@host:port/db, for the log.
    std::string describe() const;
};

// nullopt with *error set when the text is not a URL of either form.
std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string* error);

}  // namespace rproxy
