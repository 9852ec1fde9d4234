// Settings the pure layers need, filled from GUCs by the pg layer. Listener settings are read once
// at worker start (postmaster context); the upstream/pool ones again on every reload.
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <cstddef>
#include <string>

namespace rproxy {

struct ListenConfig {
    std::string listen_addresses = "localhost";
    int port = 5433;
};

struct UpstreamConfig {
    std::string conninfo;  // libpq conninfo of the upstream
    int pool_size = 5;     // connections per worker
    std::chrono::milliseconds pool_timeout{30000};
    std::chrono::milliseconds connect_timeout{10000};  // used when conninfo has none
    std::chrono::milliseconds statement_timeout{0};    // sent upstream with every new connection; 0 = none
    std::chrono::milliseconds idle_client_timeout{0};  // 0 = never
    std::chrono::milliseconds idle_in_transaction_timeout{0};
};

struct SessionLimits {
    std::size_t max_message_size = 16 * 1024 * 1024;
    std::chrono::milliseconds shutdown_grace{5000};  // in-flight statements get this long on SIGTERM
};

}  // namespace rproxy
