#include <gtest/gtest.h>

#include "proxy/cache_key.hpp"

using namespace rproxy;

TEST(CacheKey, EverythingThatChangesTheBytesSplitsTheKey) {
    SessionSettings s;
    CacheKey base = make_cache_key("host=a;user=u;", s, "select 1");
    EXPECT_EQ(base.h1, make_cache_key("host=a;user=u;", s, "select 1").h1);
    EXPECT_NE(base.full, make_cache_key("host=a;user=v;", s, "select 1").full) << "role";
    EXPECT_NE(base.full, make_cache_key("host=b;user=u;", s, "select 1").full) << "upstream";
    EXPECT_NE(base.full, make_cache_key("host=a;user=u;", s, "select 2").full) << "statement";
    SessionSettings tz;
    tz.set("TimeZone", "Asia/Tokyo");
    CacheKey tokyo = make_cache_key("host=a;user=u;", tz, "select 1");
    EXPECT_NE(base.full, tokyo.full);
    EXPECT_NE(base.h1, tokyo.h1);
    EXPECT_NE(base.h2, tokyo.h2);
    SessionSettings app;
    app.set("application_name", "psql");  // does not change results: same entry
    EXPECT_EQ(base.full, make_cache_key("host=a;user=u;", app, "select 1").full);
}

TEST(CacheKey, UpstreamIdentityLeavesThePasswordOut) {
    std::string id = upstream_identity("host=db port=5432 user=ro password=secret dbname=prod");
    EXPECT_EQ(id.find("secret"), std::string::npos);
    EXPECT_NE(id.find("user=ro"), std::string::npos);
    EXPECT_NE(id.find("dbname=prod"), std::string::npos);
    EXPECT_EQ(upstream_user("host=db user=ro"), "ro");
    EXPECT_EQ(upstream_user("host=db"), "(default)");
}

TEST(CacheHints, LeadingCommentsOnly) {
    EXPECT_EQ(parse_cache_hints("/* pg_rproxy: ttl=60 */ SELECT 1").ttl_seconds, 60);
    EXPECT_TRUE(parse_cache_hints("  /* other */ /*pg_rproxy:no_cache*/ SELECT 1").no_cache);
    CacheHints both = parse_cache_hints("/* pg_rproxy: ttl=5, no_cache */ SELECT 1");
    EXPECT_TRUE(both.no_cache);
    EXPECT_EQ(both.ttl_seconds, 5);
    EXPECT_FALSE(parse_cache_hints("SELECT 1 /* pg_rproxy: no_cache */").no_cache);
    EXPECT_FALSE(parse_cache_hints("/* pg_rproxy: ttl=abc */ SELECT 1").ttl_seconds.has_value());
    EXPECT_FALSE(parse_cache_hints("/* pg_rproxy: ttl=-5 */ SELECT 1").ttl_seconds.has_value());
    EXPECT_FALSE(parse_cache_hints("/* unterminated pg_rproxy: no_cache").no_cache);
}

TEST(CacheKey, PrefixAndStatementGiveTheSameKeyAsTheOneStepForm) {
    SessionSettings s;
    s.set("TimeZone", "UTC");
    std::string prefix = cache_key_prefix("host=a;user=u;", s);
    CacheKey two = make_cache_key(prefix, "select 1", " p0:1:5");
    CacheKey one = make_cache_key("host=a;user=u;", s, "select 1 p0:1:5");
    EXPECT_EQ(two.full, one.full);
    EXPECT_EQ(two.h1, one.h1);
    EXPECT_EQ(two.h2, one.h2);
}

TEST(SessionSettings, VersionChangesWithEveryChangeAndTravelsWithCopies) {
    SessionSettings a;
    uint64_t v0 = a.version();
    a.set("search_path", "x");
    EXPECT_NE(a.version(), v0);
    SessionSettings b = a;
    EXPECT_EQ(b.version(), a.version());
    b.set("search_path", "y");
    a.set("search_path", "z");
    EXPECT_NE(a.version(), b.version()) << "different contents never share a version";
    uint64_t before = a.version();
    a.erase("search_path");
    EXPECT_NE(a.version(), before);
}
