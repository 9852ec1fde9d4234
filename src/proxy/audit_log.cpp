#include "proxy/audit_log.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/json_text.hpp"

namespace rproxy {

namespace {

// name comes with its punctuation (",\"role\":"): one append per key.
void key(std::string& out, std::string_view name) { out += name; }

void field(std::string& out, std::string_view name, std::string_view value) {
    key(out, name);
    append_json_string(out, value);
}

template <typename Int>
void integer(std::string& out, std::string_view name, Int value) {
    key(out, name);
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    out.append(digits, end);
}

// Milliseconds with three decimals, by hand: snprintf("%.3f") costs more than the rest of a line.
void milliseconds(std::string& out, std::string_view name, double ms) {
    constexpr double kMaxMs = 1e12;  // 31 years: llround's range is not exceeded
    uint64_t micros = std::isfinite(ms) && ms > 0 ? static_cast<uint64_t>(std::llround(std::min(ms, kMaxMs) * 1000.0)) : 0;
    integer(out, name, micros / 1000);
    char frac[4] = {'.', char('0' + micros % 1000 / 100), char('0' + micros % 100 / 10), char('0' + micros % 10)};
    out.append(frac, sizeof frac);
}

void identity_fields(std::string& out, const SessionInfo& who) {
    field(out, ",\"role\":", who.role);
    field(out, ",\"database\":", who.database);
    field(out, ",\"client_address\":", who.client_address);
    field(out, ",\"server_name\":", who.server_name);
    field(out, ",\"upstream\":", who.upstream);
}

// Statements come from an established session, whose identity is interned and never changes:
// its fields are rendered once. A connection attempt's may still change (a login in progress).
void who_fields(std::string& out, const SessionInfo& who, int32_t session, bool established) {
    integer(out, ",\"session\":", session);
    if (!established) {
        identity_fields(out, who);
        return;
    }
    if (who.audit_fields.text.empty()) identity_fields(who.audit_fields.text, who);
    out += who.audit_fields.text;
}

void cache_field(std::string& out, const StatementRecord& r) {
    switch (r.cache) {
        case CacheOutcome::Hit: out += ",\"cache\":\"hit\""; return;
        case CacheOutcome::Miss: out += ",\"cache\":\"miss\""; return;
        case CacheOutcome::Uncacheable: break;
    }
    // The reasons are the pipeline's own identifiers ([a-z_]): nothing to escape.
    key(out, ",\"cache\":");
    out += "\"uncacheable:";
    out += r.uncacheable_reason;
    out += '"';
}

// The time is ours (utc_timestamp): it needs no escaping.
void opening(std::string& out, std::string_view time, std::string_view event) {
    out += "{\"time\":\"";
    out += time;
    out += "\",\"event\":\"";
    out += event;
    out += '"';
}

}  // namespace

std::string_view utc_timestamp(char (&buf)[32]) {
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
    constexpr std::size_t kSeconds = 19;  // 2026-12-02T12:00:00
    std::memcpy(buf, cached, kSeconds);
    char* p = buf + kSeconds;
    *p++ = '.';
    int micro = static_cast<int>(us % 1000000);
    for (int k = 5; k >= 0; --k, micro /= 10) p[k] = static_cast<char>('0' + micro % 10);
    p += 6;
    *p++ = 'Z';
    return std::string_view(buf, static_cast<std::size_t>(p - buf));
}

void append_audit_statement_line(std::string& out, std::string_view time, const StatementRecord& r,
                                 const SessionInfo& who, int32_t session, bool normalized) {
    opening(out, time, "statement");
    who_fields(out, who, session, true);
    out += r.protocol == StatementProtocol::Simple ? ",\"protocol\":\"simple\"" : ",\"protocol\":\"extended\"";
    field(out, ",\"statement\":", normalized ? r.normalized : r.statement);
    // What ran is what is judged; the client's own text is kept beside it (never normalised: it
    // was not parsed, so in normalized mode only the fact is shown).
    if (r.sent) {
        out += ",\"rewritten\":true";
        if (!normalized) field(out, ",\"sent_statement\":", *r.sent);
    }
    out += r.refused ? ",\"verdict\":\"refused\"" : ",\"verdict\":\"allowed\"";
    if (r.refused) {
        field(out, ",\"reason\":", reject_reason_name(r.reason));
        field(out, ",\"refusal_sqlstate\":", r.refusal_sqlstate);
        field(out, ",\"refusal_message\":", r.refusal_message);
    }
    cache_field(out, r);
    milliseconds(out, ",\"duration_ms\":", r.duration_ms);
    integer(out, ",\"rows\":", r.rows);
    field(out, ",\"sqlstate\":", r.sqlstate);
    out += "}\n";
}

void append_audit_connection_line(std::string& out, std::string_view time, ConnEvent e, const SessionInfo& who,
                                  int32_t session, std::string_view sqlstate) {
    opening(out, time, "connection");
    who_fields(out, who, session, false);
    field(out, ",\"outcome\":", conn_event_name(e));
    field(out, ",\"auth_method\":", who.auth_method);
    key(out, ",\"tls\":");
    out += who.tls ? "true" : "false";
    field(out, ",\"sqlstate\":", sqlstate);
    out += "}\n";
}

void AuditLog::configure(const ObserveConfig& c) {
    normalized_ = c.audit_normalized;
    file_.configure(c.audit_log, c.audit_log_size, c.audit_log_files);
}

// The line is built in a buffer kept between statements: no allocation per line once it is warm.
void AuditLog::statement(const StatementRecord& r, const SessionInfo& who, int32_t session) {
    char time[32];
    line_.clear();
    append_audit_statement_line(line_, utc_timestamp(time), r, who, session, normalized_);
    file_.write(line_);
    trim();
}

void AuditLog::connection(ConnEvent e, const SessionInfo& who, int32_t session, std::string_view sqlstate) {
    char time[32];
    line_.clear();
    append_audit_connection_line(line_, utc_timestamp(time), e, who, session, sqlstate);
    file_.write(line_);
    trim();
}

void AuditLog::trim() {
    // One huge statement does not keep its buffer for the life of the worker.
    if (line_.capacity() > kKeepCapacity) std::string().swap(line_);
}

}  // namespace rproxy
