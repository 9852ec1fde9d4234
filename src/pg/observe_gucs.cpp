// pg_rproxy.* settings of the observers: statement statistics and the audit log.
#include "pg/gucs.hpp"

#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {
bool track_statements = true;
int statements_max = 5000;
char* audit_log = nullptr;
int audit_log_statement = 0;
int audit_log_size_kb = 100 * 1024;
int audit_log_files = 5;

const struct config_enum_entry audit_statement_options[] = {
    {"full", 0, false}, {"normalized", 1, false}, {nullptr, 0, false}};
}  // namespace

void define_observe_gucs() {
    DefineCustomBoolVariable("pg_rproxy.track_statements", "Count statements in pg_rproxy_statements.", nullptr,
                             &track_statements, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.statements_max",
                            "Statements pg_rproxy_statements keeps (split between the workers); the least used go.",
                            nullptr, &statements_max, 5000, 100, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.audit_log",
                               "File the workers append one JSON line per statement and per connection to; empty: off.",
                               nullptr, &audit_log, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable("pg_rproxy.audit_log_statement",
                             "Statement text in the audit log: as sent (full) or with literals replaced (normalized).",
                             nullptr, &audit_log_statement, 0, audit_statement_options, PGC_SIGHUP, 0, nullptr, nullptr,
                             nullptr);
    DefineCustomIntVariable("pg_rproxy.audit_log_size", "The audit log is rotated when it would grow past this; 0: never.",
                            nullptr, &audit_log_size_kb, 100 * 1024, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_KB, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.audit_log_files", "Rotated audit log files kept (file.1 ... file.N).", nullptr,
                            &audit_log_files, 5, 0, 1000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

int guc_statements_max() { return statements_max; }

ObserveConfig observe_config() {
    ObserveConfig c;
    c.track_statements = track_statements;
    // Relative paths are relative to the data directory, the worker's working directory.
    c.audit_log = audit_log ? audit_log : "";
    c.audit_normalized = audit_log_statement == 1;
    c.audit_log_size = static_cast<uint64_t>(audit_log_size_kb) * 1024;
    c.audit_log_files = audit_log_files;
    return c;
}

}  // namespace rproxy::pg
