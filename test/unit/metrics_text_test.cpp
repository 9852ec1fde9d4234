#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "core/metrics_text.hpp"

using namespace rproxy;

namespace {
// Every sample line "name{labels} value" of a family, keyed by name and labels.
std::map<std::string, std::string> samples(const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto sp = line.rfind(' ');
        out[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

TEST(MetricsText, LabelValuesEscapeBackslashQuoteAndNewline) {
    EXPECT_EQ(escape_label_value("plain"), "plain");
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    MetricsSnapshot s;
    ServerMetrics srv;
    srv.upstream = "we\"ird\\name\nx";
    srv.host = "h";
    srv.port = "1";
    srv.role = "primary";
    s.servers.push_back(srv);
    std::string text = render_metrics(s);
    EXPECT_TRUE(contains(text, "pg_rproxy_server_healthy{upstream=\"we\\\"ird\\\\name\\nx\",host=\"h\",port=\"1\"} 1\n"))
        << text;
    // No raw newline inside a label: every line is a comment or a sample.
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) EXPECT_TRUE(line[0] == '#' || line.rfind("pg_rproxy_", 0) == 0) << line;
}

TEST(MetricsText, EveryFamilyHasHelpAndTypeAndCountersEndInTotal) {
    MetricsSnapshot s;
    s.servers.push_back(ServerMetrics{"u", "h", "1", true, "standby", 1, 2, 3, 4});
    s.latency.push_back(LatencyHistogram{"u", {}, 0});
    std::string text = render_metrics(s);
    std::istringstream in(text);
    std::string line, help_for;
    int families = 0;
    while (std::getline(in, line)) {
        if (line.rfind("# HELP ", 0) == 0) {
            help_for = line.substr(7, line.find(' ', 7) - 7);
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            std::string name = line.substr(7, line.find(' ', 7) - 7);
            std::string type = line.substr(line.rfind(' ') + 1);
            EXPECT_EQ(name, help_for) << "TYPE without HELP before it";
            EXPECT_EQ(name.rfind("pg_rproxy_", 0), 0u) << name;
            if (type == "counter") EXPECT_TRUE(name.ends_with("_total")) << name;
            else EXPECT_FALSE(name.ends_with("_total")) << name;
            ++families;
        }
    }
    EXPECT_GT(families, 20);
    auto m = samples(text);
    EXPECT_EQ(m["pg_rproxy_cache_hits_total"], "0");
    EXPECT_EQ(m["pg_rproxy_server_connections{upstream=\"u\",host=\"h\",port=\"1\",state=\"idle\"}"], "2");
    EXPECT_EQ(m["pg_rproxy_server_errors_total{upstream=\"u\",host=\"h\",port=\"1\"}"], "4");
    EXPECT_EQ(m["pg_rproxy_server_role{upstream=\"u\",host=\"h\",port=\"1\",role=\"standby\"}"], "1");
    EXPECT_EQ(m["pg_rproxy_connection_events_total{outcome=\"password_failed\"}"], "0");
}

TEST(MetricsText, HistogramBucketsAreCumulativeEndInInfAndMatchTheCount) {
    MetricsSnapshot s;
    LatencyHistogram h;
    h.upstream = "main";
    h.counts[latency_bucket(0.05)] += 2;   // the first bucket (<= 0.1 ms)
    h.counts[latency_bucket(3)] += 1;      // <= 5 ms
    h.counts[latency_bucket(60000)] += 1;  // above every bound
    h.sum_seconds = 60.0031;
    s.latency.push_back(h);
    auto m = samples(render_metrics(s));
    const std::string b = "pg_rproxy_statement_duration_seconds_bucket{upstream=\"main\",le=\"";
    EXPECT_EQ(m[b + "0.0001\"}"], "2");
    EXPECT_EQ(m[b + "0.0025\"}"], "2");
    EXPECT_EQ(m[b + "0.005\"}"], "3");
    EXPECT_EQ(m[b + "10\"}"], "3");
    EXPECT_EQ(m[b + "+Inf\"}"], "4");
    EXPECT_EQ(m["pg_rproxy_statement_duration_seconds_count{upstream=\"main\"}"], "4");
    EXPECT_EQ(m["pg_rproxy_statement_duration_seconds_sum{upstream=\"main\"}"], "60.0031");
    int buckets = 0;
    for (const auto& [k, v] : m) buckets += k.rfind(b, 0) == 0;
    EXPECT_EQ(buckets, kLatencyBuckets + 1);
}

TEST(MetricsText, LatencyBucketBoundsAreInclusive) {
    EXPECT_EQ(latency_bucket(0), 0);
    EXPECT_EQ(latency_bucket(0.1), 0);
    EXPECT_EQ(latency_bucket(0.11), 1);
    EXPECT_EQ(latency_bucket(10000), kLatencyBuckets - 1);
    EXPECT_EQ(latency_bucket(10000.5), kLatencyBuckets);
}
