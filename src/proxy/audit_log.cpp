#include "proxy/audit_log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "core/json_text.hpp"

namespace rproxy {

namespace {

void field(std::string& out, const char* name, std::string_view value) {
    out += ",\"";
    out += name;
    out += "\":";
    append_json_string(out, value);
}

void number(std::string& out, const char* name, std::string_view digits) {
    out += ",\"";
    out += name;
    out += "\":";
    out += digits;
}

void who_fields(std::string& out, const SessionInfo& who, int32_t session) {
    number(out, "session", std::to_string(session));
    field(out, "role", who.role);
    field(out, "database", who.database);
    field(out, "client_address", who.client_address);
    field(out, "server_name", who.server_name);
    field(out, "upstream", who.upstream);
}

const char* cache_name(const StatementRecord& r, std::string& buf) {
    switch (r.cache) {
        case CacheOutcome::Hit: return "hit";
        case CacheOutcome::Miss: return "miss";
        case CacheOutcome::Uncacheable: break;
    }
    buf = "uncacheable:";
    buf += r.uncacheable_reason;
    return buf.c_str();
}

}  // namespace

std::string utc_timestamp() {
    // The date and time to the second are formatted once per second (a line per statement).
    static thread_local std::time_t cached_second = -1;
    static thread_local char cached[32];
    auto now = std::chrono::system_clock::now();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1000000);
    if (secs != cached_second) {
        std::tm tm;
        gmtime_r(&secs, &tm);
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", (tm.tm_year + 1900) % 10000,
                      (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
        cached_second = secs;
    }
    char frac[9] = {'.', '0', '0', '0', '0', '0', '0', 'Z', '\0'};
    int micro = static_cast<int>(us % 1000000);
    for (int k = 6; k >= 1; --k, micro /= 10) frac[k] = static_cast<char>('0' + micro % 10);
    std::string out(cached);
    out += frac;
    return out;
}

std::string audit_statement_line(const std::string& time, const StatementRecord& r, const SessionInfo& who,
                                 int32_t session, bool normalized) {
    std::string out;
    out.reserve(256 + r.statement.size());
    out += "{\"time\":";
    append_json_string(out, time);
    field(out, "event", "statement");
    who_fields(out, who, session);
    field(out, "protocol", r.protocol == StatementProtocol::Simple ? "simple" : "extended");
    field(out, "statement", normalized ? r.normalized : r.statement);
    field(out, "verdict", r.refused ? "refused" : "allowed");
    if (r.refused) {
        field(out, "reason", reject_reason_name(r.reason));
        field(out, "refusal_sqlstate", r.refusal_sqlstate);
        field(out, "refusal_message", r.refusal_message);
    }
    std::string buf;
    field(out, "cache", cache_name(r, buf));
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3f", r.duration_ms);
    number(out, "duration_ms", ms);
    number(out, "rows", std::to_string(r.rows));
    field(out, "sqlstate", r.sqlstate);
    out += "}\n";
    return out;
}

std::string audit_connection_line(const std::string& time, ConnEvent e, const SessionInfo& who, int32_t session,
                                  std::string_view sqlstate) {
    std::string out;
    out += "{\"time\":";
    append_json_string(out, time);
    field(out, "event", "connection");
    who_fields(out, who, session);
    field(out, "outcome", conn_event_name(e));
    field(out, "auth_method", who.auth_method);
    out += ",\"tls\":";
    out += who.tls ? "true" : "false";
    field(out, "sqlstate", sqlstate);
    out += "}\n";
    return out;
}

void AuditLog::configure(const ObserveConfig& c) {
    normalized_ = c.audit_normalized;
    file_.configure(c.audit_log, c.audit_log_size, c.audit_log_files);
}

void AuditLog::statement(const StatementRecord& r, const SessionInfo& who, int32_t session) {
    file_.write(audit_statement_line(utc_timestamp(), r, who, session, normalized_));
}

void AuditLog::connection(ConnEvent e, const SessionInfo& who, int32_t session, std::string_view sqlstate) {
    file_.write(audit_connection_line(utc_timestamp(), e, who, session, sqlstate));
}

}  // namespace rproxy
