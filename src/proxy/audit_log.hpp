// The audit log (pg_rproxy.audit_log): one JSON object per line for every statement and every
// connection attempt, appended by the LogFile's thread so the loop never waits on the disk.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>

#include "core/connection_events.hpp"
#include "core/observe_config.hpp"
#include "core/session_info.hpp"
#include "core/statement_record.hpp"
#include "proxy/log_file.hpp"

namespace rproxy {

// The lines themselves, pure (tested without files), appended to out with their '\n'. time: what
// utc_timestamp() gives (written as it is, unescaped). A statement's who is an interned identity
// (Worker::intern_identity): its fields are rendered once, into who.audit_fields.
void append_audit_statement_line(std::string& out, std::string_view time, const StatementRecord& r,
                                 const SessionInfo& who, int32_t session, bool normalized);
void append_audit_connection_line(std::string& out, std::string_view time, ConnEvent e, const SessionInfo& who,
                                  int32_t session, std::string_view sqlstate);
// Now, ISO 8601 UTC with microseconds (2026-12-02T12:00:00.000000Z), written into buf.
std::string_view utc_timestamp(char (&buf)[32]);

class AuditLog {
public:
    AuditLog() : file_("audit log") {}
    void start() { file_.start(); }
    void configure(const ObserveConfig& c);
    bool enabled() const { return file_.enabled(); }
    void statement(const StatementRecord& r, const SessionInfo& who, int32_t session);
    void connection(ConnEvent e, const SessionInfo& who, int32_t session, std::string_view sqlstate);
    LogFile& file() { return file_; }

private:
    void trim();
    static constexpr std::size_t kKeepCapacity = 64 * 1024;

    LogFile file_;
    bool normalized_ = false;
    std::string line_;
};

}  // namespace rproxy
