// Layer 1 of the firewall: parses a query string with the server's own raw_parser and walks the
// whole tree (CTEs, subqueries in every clause, set operations, LATERAL, VALUES, EXPLAIN'd, cursor,
// PREPARE and COPY queries), returning the facts the policy judges. Built-in functions get their
// volatility from the gateway's pg_catalog.
#pragma once

#include <string>

#include "core/statement_facts.hpp"

namespace rproxy::pg {

// The scanner's forms of sql, without the grammar. Never throws: a string the scanner rejects
// comes back with ok = false.
ScannedQuery scan_statements(const std::string& sql);

// Never throws a PostgreSQL error: parser errors become ParsedQuery::error_*. normalized: sql's
// normalized form from scan_statements, taken instead of scanning again.
ParsedQuery parse_statements(const std::string& sql, std::string* normalized = nullptr);

// Forget cached built-in volatilities (after a reload, or CREATE EXTENSION in the gateway).
void forget_builtin_functions();

}  // namespace rproxy::pg
