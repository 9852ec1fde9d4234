// The observers' pure parts: JSON strings from any bytes, the latency histogram's percentiles,
// and the audit log's lines.
#include <gtest/gtest.h>

#include "core/json_text.hpp"
#include "core/latency_histogram.hpp"
#include "proxy/audit_log.hpp"

using namespace rproxy;

namespace {
std::string json(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}
}  // namespace

TEST(JsonText, EscapesQuotesBackslashesAndControlBytes) {
    EXPECT_EQ(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(json("x\ny\rz\t"), "\"x\\ny\\rz\\t\"");
    EXPECT_EQ(json(std::string("\0\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
}

TEST(JsonText, KeepsValidUtf8AndReplacesInvalidBytes) {
    EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    EXPECT_EQ(json("\xff"), "\"\\ufffd\"");
    EXPECT_EQ(json("\xc3"), "\"\\ufffd\"");                       // truncated sequence
    EXPECT_EQ(json("\xc0\xaf"), "\"\\ufffd\\ufffd\"");            // overlong
    EXPECT_EQ(json("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); // surrogate
    EXPECT_EQ(json("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // past U+10FFFF
}

TEST(LatencyHistogram, BucketsGrowGeometrically) {
    EXPECT_EQ(statement_latency_bucket(0), 0);
    EXPECT_EQ(statement_latency_bucket(-1), 0);
    EXPECT_EQ(statement_latency_bucket(0.004), 0);
    EXPECT_EQ(statement_latency_bucket(1e12), kStatementLatencyBuckets - 1);
    for (double ms : {0.01, 0.3, 1.0, 7.5, 120.0, 4000.0}) {
        int b = statement_latency_bucket(ms);
        EXPECT_LT(ms, statement_latency_upper(b)) << ms;
        EXPECT_GE(ms, statement_latency_upper(b - 1)) << ms;
    }
}

TEST(LatencyHistogram, PercentilesFallInTheRightBucket) {
    uint32_t counts[kStatementLatencyBuckets] = {};
    EXPECT_EQ(statement_latency_percentile(counts, 0.5, 0), 0);
    for (int i = 0; i < 98; ++i) counts[statement_latency_bucket(1.0)]++;
    counts[statement_latency_bucket(100.0)]++;
    counts[statement_latency_bucket(200.0)]++;
    double p50 = statement_latency_percentile(counts, 0.50, 200.0);
    EXPECT_GE(p50, statement_latency_upper(statement_latency_bucket(1.0) - 1));
    EXPECT_LE(p50, statement_latency_upper(statement_latency_bucket(1.0)));
    double p99 = statement_latency_percentile(counts, 0.99, 200.0);
    EXPECT_GE(p99, 70.0);
    EXPECT_LE(p99, 200.0);
    EXPECT_LE(statement_latency_percentile(counts, 1.0, 150.0), 150.0);  // never above the maximum seen
}

TEST(AuditLog, StatementLineCarriesEveryField) {
    StatementRecord r;
    r.statement = "SELECT '\"x\"\n' FROM t WHERE a = 1";
    r.normalized = "select $1 from t where a = $2";
    r.duration_ms = 1.5;
    r.rows = 3;
    r.cache = CacheOutcome::Uncacheable;
    r.uncacheable_reason = "in_transaction";
    SessionInfo who;
    who.role = "alice";
    who.database = "db";
    who.client_address = "10.0.0.1";
    who.upstream = "up";
    std::string line;
    append_audit_statement_line(line, "2026-12-02T00:00:00.000000Z", r, who, 42, false);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line, whatever the statement holds
    for (const char* part : {"\"event\":\"statement\"", "\"session\":42", "\"role\":\"alice\"", "\"database\":\"db\"",
                             "\"client_address\":\"10.0.0.1\"", "\"server_name\":\"\"", "\"upstream\":\"up\"",
                             "\"statement\":\"SELECT '\\\"x\\\"\\n' FROM t WHERE a = 1\"", "\"verdict\":\"allowed\"",
                             "\"cache\":\"uncacheable:in_transaction\"", "\"duration_ms\":1.500", "\"rows\":3",
                             "\"sqlstate\":\"00000\""})
        EXPECT_NE(line.find(part), std::string::npos) << part << " in " << line;
    std::string normalized;
    append_audit_statement_line(normalized, "t", r, who, 42, true);
    EXPECT_NE(normalized.find("\"statement\":\"select $1 from t where a = $2\""), std::string::npos);

    r.refused = true;
    r.reason = RejectReason::StatementKind;
    r.refusal_sqlstate = "25006";
    r.refusal_message = "Write operations are not permitted";
    r.sqlstate = "25006";
    line.clear();
    append_audit_statement_line(line, "t", r, who, 42, false);
    for (const char* part : {"\"verdict\":\"refused\"", "\"reason\":\"statement_kind\"", "\"refusal_sqlstate\":\"25006\"",
                             "\"sqlstate\":\"25006\""})
        EXPECT_NE(line.find(part), std::string::npos) << part;
}

TEST(AuditLog, RewrittenStatementKeepsWhatTheClientSent) {
    SessionInfo who;
    StatementRecord r;
    r.statement = "SELECT * FROM real_table";
    r.normalized = "select * from real_table";
    std::string plain;
    append_audit_statement_line(plain, "t", r, who, 1, false);
    EXPECT_EQ(plain.find("rewritten"), std::string::npos) << plain;
    EXPECT_EQ(plain.find("sent_statement"), std::string::npos) << plain;

    r.sent = std::string_view("SELECT * FROM \"Fake\"\ttable");
    std::string full, normalized;
    append_audit_statement_line(full, "t", r, who, 1, false);
    append_audit_statement_line(normalized, "t", r, who, 1, true);
    EXPECT_NE(full.find("\"statement\":\"SELECT * FROM real_table\",\"rewritten\":true,"
                        "\"sent_statement\":\"SELECT * FROM \\\"Fake\\\"\\ttable\""),
              std::string::npos)
        << full;
    // Its literals were never normalised: a normalized line says only that it was rewritten.
    EXPECT_NE(normalized.find("\"statement\":\"select * from real_table\",\"rewritten\":true,"), std::string::npos)
        << normalized;
    EXPECT_EQ(normalized.find("Fake"), std::string::npos) << normalized;
}

TEST(AuditLog, ConnectionLineNamesItsOutcome) {
    SessionInfo who;
    who.role = "mallory";
    who.client_address = "::1";
    std::string line;
    append_audit_connection_line(line, "t", ConnEvent::PasswordFailed, who, 0, "28P01");
    EXPECT_NE(line.find("\"event\":\"connection\""), std::string::npos);
    EXPECT_NE(line.find("\"outcome\":\"password_failed\""), std::string::npos);
    EXPECT_NE(line.find("\"sqlstate\":\"28P01\""), std::string::npos);
}

TEST(AuditLog, DurationsHaveThreeDecimalsRounded) {
    SessionInfo who;
    for (auto [ms, text] : std::vector<std::pair<double, std::string>>{
             {0.0004, "0.000"}, {0.0005, "0.001"}, {1234.5678, "1234.568"}, {2.9996, "3.000"}, {-1.0, "0.000"}}) {
        StatementRecord r;
        r.duration_ms = ms;
        std::string line;
        append_audit_statement_line(line, "t", r, who, 1, false);
        EXPECT_NE(line.find("\"duration_ms\":" + text + ","), std::string::npos) << ms << " in " << line;
    }
}

TEST(AuditLog, TimestampIsUtcWithMicroseconds) {
    char buf[32];
    std::time_t before = std::time(nullptr);
    std::string stamp(utc_timestamp(buf));
    std::time_t after = std::time(nullptr);
    ASSERT_EQ(stamp.size(), 27u) << stamp;
    for (std::size_t i = 0; i < stamp.size(); ++i) {
        char want = i == 4 || i == 7 ? '-' : i == 10 ? 'T' : i == 13 || i == 16 ? ':' : i == 19 ? '.' : i == 26 ? 'Z' : '0';
        if (want == '0') EXPECT_TRUE(stamp[i] >= '0' && stamp[i] <= '9') << stamp;
        else EXPECT_EQ(stamp[i], want) << stamp;
    }
    bool matches = false;
    for (std::time_t s = before; s <= after; ++s) {
        std::tm tm;
        gmtime_r(&s, &tm);
        char seconds[24];
        std::strftime(seconds, sizeof seconds, "%Y-%m-%dT%H:%M:%S", &tm);
        matches = matches || stamp.compare(0, 19, seconds) == 0;
    }
    EXPECT_TRUE(matches) << stamp;
}

TEST(AuditLog, EachIdentityRendersItsOwnFields) {
    SessionInfo alice, bob;
    alice.role = "alice";
    alice.upstream = "up";
    bob.role = "bob";
    bob.upstream = "up";
    StatementRecord r;
    std::string a1, b1, a2;
    append_audit_statement_line(a1, "t", r, alice, 1, false);
    append_audit_statement_line(b1, "t", r, bob, 2, false);
    append_audit_statement_line(a2, "t", r, alice, 1, false);
    EXPECT_NE(a1.find("\"role\":\"alice\""), std::string::npos) << a1;
    EXPECT_NE(b1.find("\"role\":\"bob\""), std::string::npos) << b1;
    EXPECT_EQ(b1.find("alice"), std::string::npos) << b1;
    EXPECT_EQ(a1, a2);  // the second line from the fields rendered once
    // A copy of an identity, then changed, renders its own fields, not the original's.
    SessionInfo carol = alice;
    carol.role = "carol";
    std::string c1;
    append_audit_statement_line(c1, "t", r, carol, 3, false);
    EXPECT_NE(c1.find("\"role\":\"carol\""), std::string::npos) << c1;
    EXPECT_EQ(c1.find("alice"), std::string::npos) << c1;
}
