#include <gtest/gtest.h>

#include <algorithm>

#include "proxy/connect_spec.hpp"
#include "proxy/cache_key.hpp"

using namespace rproxy;

namespace {
std::string value_of(const ConnectSpec& s, const std::string& k) {
    for (std::size_t i = 0; i < s.keywords.size(); ++i)
        if (s.keywords[i] == k) return s.values[i];
    return "<none>";
}
}  // namespace

TEST(ConnectPlan, EmptyAndInvalidConninfoAreReported) {
    UpstreamConfig cfg;
    EXPECT_NE(plan_connection(cfg).error.find("pg_rproxy.upstream is not set"), std::string::npos);
    cfg.conninfo = "host=x bogus_key=1";
    EXPECT_NE(plan_connection(cfg).error.find("invalid pg_rproxy.upstream"), std::string::npos);
}

TEST(ConnectPlan, ForcesReadOnlySessionsAndKeepsUserOptions) {
    UpstreamConfig cfg;
    cfg.conninfo = "host=127.0.0.1 port=5999 user=u options='-c work_mem=8MB' connect_timeout=3";
    auto plan = plan_connection(cfg);
    ASSERT_TRUE(plan.error.empty());
    EXPECT_EQ(value_of(plan.spec, "options"), "-c work_mem=8MB -c default_transaction_read_only=on");
    EXPECT_EQ(value_of(plan.spec, "fallback_application_name"), "pg_rproxy");
    EXPECT_EQ(value_of(plan.spec, "port"), "5999");
    EXPECT_EQ(plan.spec.timeout, std::chrono::seconds(3));
    EXPECT_TRUE(plan.hosts_to_resolve.empty());  // numeric: no lookup
}

TEST(ConnectPlan, NamesAreResolvedOffTheLoop) {
    UpstreamConfig cfg;
    cfg.conninfo = "host=localhost,/var/run/postgresql port=5432 user=u dbname=db";
    auto plan = plan_connection(cfg);
    ASSERT_TRUE(plan.error.empty()) << plan.error;
    ASSERT_EQ(plan.hosts_to_resolve.size(), 2u);
    EXPECT_EQ(plan.hosts_to_resolve[0], "localhost");
    EXPECT_EQ(plan.hosts_to_resolve[1], "");
    EXPECT_EQ(resolve_hosts(plan), "");
    // Every address of localhost gets its own entry; the socket path keeps an empty hostaddr.
    std::string addrs = value_of(plan.spec, "hostaddr");
    std::string hosts = value_of(plan.spec, "host");
    EXPECT_NE(addrs.find("127.0.0.1"), std::string::npos) << addrs;
    EXPECT_EQ(addrs.back(), ',') << addrs;
    EXPECT_EQ(std::count(addrs.begin(), addrs.end(), ','), std::count(hosts.begin(), hosts.end(), ','));
    EXPECT_EQ(hosts.substr(hosts.rfind(',') + 1), "/var/run/postgresql");

    cfg.conninfo = "host=localhost,127.0.0.1 port=5001,5002";
    plan = plan_connection(cfg);
    ASSERT_EQ(resolve_hosts(plan), "");
    std::string ports = value_of(plan.spec, "port");
    EXPECT_EQ(ports.substr(ports.rfind(',') + 1), "5002");
    EXPECT_EQ(ports.substr(0, 4), "5001");

    cfg.conninfo = "host=no-such-host.invalid";
    plan = plan_connection(cfg);
    EXPECT_NE(resolve_hosts(plan).find("could not translate host name"), std::string::npos);
}

TEST(SplitServers, AHostListIsOneServerPerHostWithItsPort) {
    std::string error;
    auto pairs = parse_conninfo("host=a,b,c port=5432,5433,5434 dbname=db target_session_attrs=standby", &error);
    ASSERT_TRUE(pairs) << error;
    auto servers = split_servers(*pairs, &error);
    ASSERT_EQ(servers.size(), 3u);
    EXPECT_EQ(servers[1].host, "b");
    EXPECT_EQ(servers[1].port, "5433");
    EXPECT_EQ(*conninfo_value(servers[1].conninfo, "host"), "b");
    EXPECT_EQ(*conninfo_value(servers[1].conninfo, "port"), "5433");
    EXPECT_EQ(*conninfo_value(servers[1].conninfo, "target_session_attrs"), "standby");  // libpq checks each server
    EXPECT_EQ(*conninfo_value(servers[2].conninfo, "dbname"), "db");
}

TEST(SplitServers, OnePortServesEveryHostAndURIsSplitToo) {
    std::string error;
    auto servers = split_servers(*parse_conninfo("postgresql://u@h1,h2:6000/db", &error), &error);
    ASSERT_EQ(servers.size(), 2u);
    EXPECT_EQ(servers[0].host, "h1");
    EXPECT_EQ(servers[1].port, "6000");
    EXPECT_EQ(*conninfo_value(servers[0].conninfo, "user"), "u");
    auto one = split_servers(*parse_conninfo("dbname=x", &error), &error);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].host, "localhost");
    EXPECT_EQ(one[0].port, "5432");
}

TEST(SplitServers, MismatchedListsAreProblems) {
    EXPECT_EQ(conninfo_problem("host=a,b,c port=1,2"), "could not match 2 port numbers to 3 hosts");
    EXPECT_EQ(conninfo_problem("host=a,b hostaddr=1.1.1.1,2.2.2.2,3.3.3.3"),
              "could not match 2 host names to 3 hostaddr values");
    EXPECT_EQ(conninfo_problem("host=a bogus=1"), "invalid connection option \"bogus\"");
    EXPECT_NE(conninfo_problem("host=a replication=true"), "");
    EXPECT_EQ(conninfo_problem("host=a,b port=5432"), "");
}

TEST(FormatConninfo, QuotesSoThatLibpqReadsTheSameValuesBack) {
    ConninfoPairs p{{"host", "h"}, {"password", "it's a \\ secret"}, {"options", "-c a=b"}};
    std::string error;
    auto back = parse_conninfo(format_conninfo(p), &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*conninfo_value(*back, "password"), "it's a \\ secret");
    EXPECT_EQ(*conninfo_value(*back, "options"), "-c a=b");
}

TEST(RepeatedKeywords, ADatabaseNameSplicedIntoAConninfoIsCaught) {
    EXPECT_FALSE(conninfo_repeats_keywords("host=lab-1.internal port=5432 dbname=x"));
    EXPECT_TRUE(conninfo_repeats_keywords("host=lab-1.internal dbname=x host=/var/run/postgresql user=postgres dbname=postgres"));
    EXPECT_FALSE(conninfo_repeats_keywords("host='a b' options='-c x=1 host=y'"));  // inside quotes: one value
    EXPECT_TRUE(conninfo_repeats_keywords("host = a  host=b"));
    EXPECT_FALSE(conninfo_repeats_keywords("postgresql://u@h/db?sslmode=require"));
    EXPECT_TRUE(conninfo_repeats_keywords("postgresql://u@h/db?dbname=postgres"));
    EXPECT_TRUE(conninfo_repeats_keywords("postgresql://h?host=/tmp"));
    EXPECT_TRUE(conninfo_repeats_keywords("postgresql:///?user=a&user=b"));
}

TEST(UpstreamIdentity, OptionsAndServiceAreTheirOwnUpstreams) {
    EXPECT_NE(upstream_identity("host=h dbname=d user=u options='-c role=tenant_a'"),
              upstream_identity("host=h dbname=d user=u options='-c role=tenant_b'"));
    EXPECT_NE(upstream_identity("service=a"), upstream_identity("service=b"));
    EXPECT_EQ(upstream_identity("host=h dbname=d user=u password=x"), upstream_identity("host=h dbname=d user=u"));
}
