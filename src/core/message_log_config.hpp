// pg_rproxy.message_log*: the intercept log of every protocol message.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace rproxy {

struct MessageLogConfig {
    std::string path;                    // empty: off
    std::vector<std::string> upstreams;  // pg_rproxy_upstreams names; empty: every client. "default": pg_rproxy.upstream's
    int bytes = 64;                      // hex dump length per message
    uint64_t rotate_bytes = 100ull * 1024 * 1024;  // 0: never rotated
    int keep_files = 5;
};

}  // namespace rproxy
