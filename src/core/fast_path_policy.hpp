// Which fast-path FunctionCall messages may pass: those that only read large objects, as pg_dump,
// psql's \lo_export and libpq's lo_* functions make them. Judged by the function's OID (the
// hand-assigned OIDs below 10000 of pg_proc.dat are the same in every PostgreSQL version) and, for
// lo_open, by its mode argument.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/firewall_policy.hpp"

namespace rproxy {

struct FastPathFunction {
    uint32_t oid;
    const char* name;                 // in pg_catalog
    std::vector<uint32_t> arg_types;  // type OIDs, for running it as a statement
};

// The function with this OID when it may be called; nullptr otherwise.
const FastPathFunction* fast_path_function(uint32_t oid);

struct FastPathVerdict {
    bool allowed = false;
    const FastPathFunction* function = nullptr;  // the large-object function called, if it is one
    std::string sqlstate;                        // otherwise 25006, or 08P01 for a malformed call
    std::string message;
};

// formats: as in the message (none = all text, one = all, else per argument); args nullopt = NULL.
// pg_rproxy.denied_functions applies here too. On a read-write upstream every call passes but
// those to denied large-object functions: the upstream checks the rest.
FastPathVerdict judge_fast_path(uint32_t oid, const std::vector<int16_t>& formats,
                                const std::vector<std::optional<std::string>>& args, int16_t result_format,
                                const FirewallConfig& cfg, Access access = Access::ReadOnly);

}  // namespace rproxy
