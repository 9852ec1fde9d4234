#include <gtest/gtest.h>

#include "core/routing.hpp"
#include "core/text_lists.hpp"

using namespace rproxy;

namespace {
Route route(int position, std::optional<std::string> upstream) {
    Route r;
    r.position = position;
    r.upstream = std::move(upstream);
    return r;
}
auto no_groups = [](const std::string&) { return false; };
}  // namespace

TEST(ServerName, ExactIgnoresCaseAndWildcardsStandForOneLabel) {
    EXPECT_TRUE(server_name_matches("alpha.test", "ALPHA.test"));
    EXPECT_FALSE(server_name_matches("alpha.test", "beta.test"));
    EXPECT_TRUE(server_name_matches("*.example.com", "db1.example.com"));
    EXPECT_FALSE(server_name_matches("*.example.com", "example.com"));
    EXPECT_FALSE(server_name_matches("*.example.com", "a.b.example.com"));
    EXPECT_FALSE(server_name_matches("*.example.com", "db1.example.org"));
    EXPECT_FALSE(server_name_matches("*.example.com", ""));
}

TEST(Routes, FirstMatchWinsOverEveryColumn) {
    std::vector<Route> routes;
    Route by_name = route(1, "alpha");
    by_name.server_name = "alpha.test";
    Route by_role = route(2, "lab");
    by_role.role = "+lab";
    Route by_db = route(3, "reports");
    by_db.database = "reports";
    Route by_addr = route(4, "office");
    by_addr.client_address = "10.0.0.0/8";
    Route by_port = route(5, "port");
    by_port.listen_port = 6001;
    Route ask = route(6, std::nullopt);
    routes = {by_name, by_role, by_db, by_addr, by_port, ask};
    auto member_of_lab = [](const std::string& g) { return g == "lab"; };

    RouteFacts f{"alpha.test", "reports", "ann", "10.1.2.3", 6001};
    EXPECT_EQ(first_route(routes, f, no_groups)->position, 1);
    f.server_name = "";
    EXPECT_EQ(first_route(routes, f, member_of_lab)->position, 2);
    EXPECT_EQ(first_route(routes, f, no_groups)->position, 3);
    f.database = "other";
    EXPECT_EQ(first_route(routes, f, no_groups)->position, 4);
    f.client_address = "192.168.1.1";
    EXPECT_EQ(first_route(routes, f, no_groups)->position, 5);
    f.listen_port = 6002;
    const Route* last = first_route(routes, f, no_groups);
    ASSERT_NE(last, nullptr);
    EXPECT_FALSE(last->upstream);  // the router decides
    routes.pop_back();
    EXPECT_EQ(first_route(routes, f, no_groups), nullptr);
}

TEST(Routes, AGroupRouteTakesTheGroupItselfAndARoleNameOnlyThatRole) {
    Route r = route(1, "x");
    r.role = "+lab";
    RouteFacts f{"", "db", "lab", "127.0.0.1", 5433};
    EXPECT_NE(first_route({r}, f, no_groups), nullptr);
    r.role = "lab";
    f.role = "lab_member";
    EXPECT_EQ(first_route({r}, f, [](const std::string&) { return true; }), nullptr);
}

TEST(Certificates, ExactBeforeWildcard) {
    std::vector<ServerCertificate> certs{{"*.test", "wild.crt", "wild.key"}, {"alpha.test", "alpha.crt", "alpha.key"}};
    EXPECT_EQ(certificate_for(certs, "alpha.test")->cert_file, "alpha.crt");
    EXPECT_EQ(certificate_for(certs, "beta.test")->cert_file, "wild.crt");
    EXPECT_EQ(certificate_for(certs, "beta.other"), nullptr);
    EXPECT_EQ(certificate_for(certs, ""), nullptr);
}

TEST(RouterAnswers, AnUpstreamNameAConninfoOrGarbage) {
    RoutingSnapshot snap;
    snap.upstreams["alpha"] = UpstreamDefinition{};
    EXPECT_EQ(classify_router_answer("alpha", snap), RouterAnswerKind::Upstream);
    EXPECT_EQ(classify_router_answer("host=10.0.0.5 port=5432", snap), RouterAnswerKind::Conninfo);
    EXPECT_EQ(classify_router_answer("postgresql://h/db", snap), RouterAnswerKind::Conninfo);
    EXPECT_EQ(classify_router_answer("no such upstream", snap), RouterAnswerKind::Garbage);
}

TEST(PortList, CommaSeparatedPortsOnce) {
    EXPECT_EQ(parse_port_list("5433"), std::vector<int>({5433}));
    EXPECT_EQ(parse_port_list("5433, 5434,5433"), std::vector<int>({5433, 5434}));
    EXPECT_TRUE(parse_port_list("5433,x").empty());
    EXPECT_TRUE(parse_port_list("70000").empty());
    EXPECT_TRUE(parse_port_list("").empty());
    EXPECT_TRUE(parse_port_list("-1").empty());
}

#include "proxy/health_checker.hpp"

TEST(HealthCheck, RecoveryTellsTheRoleAndLagIsKept) {
    ServerCheck primary = HealthChecker::interpret(std::string("f"), std::nullopt);
    EXPECT_TRUE(primary.healthy);
    EXPECT_EQ(primary.role, ServerRole::Primary);
    EXPECT_EQ(primary.replay_lag_ms, -1);
    ServerCheck standby = HealthChecker::interpret(std::string("t"), std::string("1500"));
    EXPECT_EQ(standby.role, ServerRole::Standby);
    EXPECT_EQ(standby.replay_lag_ms, 1500);
    EXPECT_FALSE(HealthChecker::interpret(std::nullopt, std::nullopt).healthy);
}
