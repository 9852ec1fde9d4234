// Reads from the gateway's own database for the workers: queries run in one transaction of their
// own, their rows copied out as text, and any error turned into a message with the transaction
// rolled back, so the worker never keeps a failed one and no longjmp crosses C++ frames.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace rproxy::pg {

using CatalogRow = std::vector<std::optional<std::string>>;

struct CatalogQuery {
    std::string sql;
    std::vector<std::optional<std::string>> params;  // text parameters ($1 ...); nullopt = NULL
    bool read_only = true;
};

struct CatalogResult {
    std::string error;                      // "" when every query ran
    std::vector<std::vector<CatalogRow>> results;  // one per query
};

CatalogResult run_catalog_queries(const std::vector<CatalogQuery>& queries);

// name as SQL: each part of a possibly qualified name quoted as needed; nullopt when it does not
// parse as a name.
std::optional<std::string> quoted_qualified_name(const std::string& name);

}  // namespace rproxy::pg
