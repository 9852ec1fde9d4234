// What the upstream said about a prepared statement (Describe of the statement): its
// ParameterDescription and its RowDescription or NoData, as whole messages. Kept per statement
// text and settings, so that a Describe, or a Bind answered from the cache, needs no round trip.
#pragma once
#include "core/pure_layer.hpp"

#include <string>

namespace rproxy {

struct StatementDescription {
    std::string parameters;  // 't'
    std::string rows;        // 'T' (columns in text format) or 'n'
    bool complete() const { return !parameters.empty() && !rows.empty(); }
};

}  // namespace rproxy
