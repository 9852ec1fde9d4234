// Settings the pure layers need, filled from GUCs by the pg layer. Listener settings are read once
// at worker start (postmaster context); the upstream/pool ones again on every reload.
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace rproxy {

struct ListenConfig {
    std::string listen_addresses = "localhost";
    std::vector<int> ports{5433};  // every worker listens on each
};

// Routing over many upstreams (reloadable).
struct RoutingConfig {
    std::string router;                            // function asked when no route decides; "" = none
    std::chrono::milliseconds router_cache_ttl{10000};
    std::chrono::milliseconds health_check_interval{5000};
};

struct UpstreamConfig {
    std::string conninfo;  // libpq conninfo of the upstream
    int pool_size = 5;     // connections per worker
    std::chrono::milliseconds pool_timeout{30000};
    std::chrono::milliseconds connect_timeout{10000};  // used when conninfo has none
    std::chrono::milliseconds statement_timeout{0};    // sent upstream with every new connection; 0 = none
    std::chrono::milliseconds idle_client_timeout{0};  // 0 = never
    std::chrono::milliseconds idle_in_transaction_timeout{0};
    // pg_rproxy_upstreams.access = 'read_write': sessions are not made read-only upstream.
    bool read_write = false;
    // pg_rproxy_upstreams.auth = 'passthrough': each client's own login opens its connection.
    bool passthrough = false;
};

// Client authentication, TLS toward clients and connection limits (pg_rproxy.* GUCs, reloadable).
struct SecurityConfig {
    std::string auth_method = "scram-sha-256";  // when the rules table is empty or missing
    std::chrono::milliseconds auth_failure_delay{200};
    std::chrono::milliseconds authentication_timeout{60000};
    int max_client_connections = 10000;        // over all workers; 0 = no limit
    double connection_rate = 0;                 // new connections per second per client address; 0 = off
    int connection_burst = 0;                   // bucket size (0: the rate, at least 1)
    bool ssl = false;
    std::string ssl_cert_file = "server.crt";   // relative to the gateway's data directory
    std::string ssl_key_file = "server.key";
    std::string ssl_ca_file;                    // CA of client certificates (cert method)
    std::string ssl_min_protocol_version = "TLSv1.2";
    std::string ssl_ciphers = "HIGH:MEDIUM:+3DES:!aNULL";
    std::size_t max_message_size = 16 * 1024 * 1024;
};

struct SessionLimits {
    std::size_t max_message_size = 16 * 1024 * 1024;
    std::chrono::milliseconds shutdown_grace{5000};  // in-flight statements get this long on SIGTERM
};

}  // namespace rproxy
