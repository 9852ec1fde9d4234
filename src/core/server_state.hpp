// What the health checks find out about an upstream server, shared by every worker.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>

namespace rproxy {

enum class ServerRole { Unknown, Primary, Standby };

struct ServerCheck {
    bool healthy = false;
    ServerRole role = ServerRole::Unknown;
    std::string error;          // why not healthy
    int64_t replay_lag_ms = -1;  // standbys: how far replay is behind; -1 unknown or a primary
};

struct ServerState {
    bool healthy = true;  // until a check or a connection attempt says otherwise
    ServerRole role = ServerRole::Unknown;
};

// One worker's connections and clients on one server (ServerDirectory slot).
struct ServerCounts {
    int slot = -1;
    uint32_t busy = 0;
    uint32_t idle = 0;
    uint32_t clients = 0;
    uint64_t statements = 0;  // since the worker started: statements its clients of this upstream ran
    uint64_t cache_hits = 0;  // of which answered from the cache
};

// A failed connection attempt whose server answered and refused this login alone (a role, a
// database, a connection limit) says nothing about the server: only the rest make it unhealthy.
inline bool server_refused_login_only(const std::string& why) {
    return why.find("FATAL:") != std::string::npos && why.find("the database system is") == std::string::npos &&
           why.find("terminating connection") == std::string::npos;
}

inline const char* server_role_name(ServerRole r) {
    switch (r) {
        case ServerRole::Primary: return "primary";
        case ServerRole::Standby: return "standby";
        case ServerRole::Unknown: break;
    }
    return "unknown";
}

}  // namespace rproxy
