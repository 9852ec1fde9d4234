// The read-only guard: classifies a query string with the server's own raw_parser. Used by the
// workers for every statement and by pg_rproxy_classify(), so both give the same verdict.
#pragma once

#include <string>

#include "core/verdict.hpp"

namespace rproxy::pg {

// Never throws a PostgreSQL error: syntax errors become a 42601 verdict with the position.
Verdict classify_statement(const std::string& sql);

}  // namespace rproxy::pg
