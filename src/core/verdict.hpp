// The firewall's answer for one query string. Produced by the pg layer (raw_parser), consumed by
// the proxy layer and by the SQL function pg_rproxy_classify, so both always agree.
#pragma once
#include "core/pure_layer.hpp"

#include <string>
#include <vector>

namespace rproxy {

struct Verdict {
    bool allowed = false;
    std::vector<std::string> kinds;  // one command name per statement ("SELECT", "INSERT", ...)
    std::string sqlstate;            // empty when allowed
    std::string message;             // client-facing message when rejected
    int position = 0;                // 1-based character position for syntax errors, 0 if none
};

}  // namespace rproxy
