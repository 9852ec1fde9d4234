// The scanner's forms of a query string (ScannedQuery) for the plain statements most clients send,
// without the server's scanner: ASCII words, integers, simple quoted strings, parameters and a few
// operators. Anything else (other quotes, comments, dollar signs, escapes, decimals, non-ASCII,
// unusual operators) is left to the server's scanner, which must be asked then. For every string
// it accepts, the result is byte for byte what the server's scanner gives (pg/statement_parser's
// scan_forms); the pgTAP suite checks that with pg_rproxy_scan().
#pragma once
#include "core/pure_layer.hpp"

#include <string_view>

#include "core/statement_facts.hpp"

namespace rproxy {

// True with out filled (ok, normalized, shape); false when the server's scanner must decide.
bool quick_scan(std::string_view sql, ScannedQuery& out);

// A ScannedQuery::shape for people: each placeholder becomes $1, $2...
std::string numbered_shape(std::string_view shape);

}  // namespace rproxy
