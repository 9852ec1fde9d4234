// Settings of the observers after the pipeline: pg_rproxy_statements and the audit log.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>

namespace rproxy {

struct ObserveConfig {
    bool track_statements = true;      // pg_rproxy.track_statements
    std::string audit_log;             // pg_rproxy.audit_log: a path; empty: off
    bool audit_normalized = false;     // pg_rproxy.audit_log_statement = normalized
    uint64_t audit_log_size = 100ull << 20;  // rotate past this many bytes (0: never)
    int audit_log_files = 5;           // rotated files kept
};

}  // namespace rproxy
