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

// The lines themselves, pure (tested without files). time: ISO 8601 UTC with microseconds.
std::string audit_statement_line(const std::string& time, const StatementRecord& r, const SessionInfo& who,
                                 int32_t session, bool normalized);
std::string audit_connection_line(const std::string& time, ConnEvent e, const SessionInfo& who, int32_t session,
                                  std::string_view sqlstate);
std::string utc_timestamp();  // now, as the lines carry it

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
    LogFile file_;
    bool normalized_ = false;
};

}  // namespace rproxy
