#include <gtest/gtest.h>

#include "proxy/session_settings.hpp"

using namespace rproxy;

TEST(SessionSettings, NamesAreCaseInsensitive) {
    SessionSettings s;
    s.set("DateStyle", "ISO");
    ASSERT_NE(s.get("datestyle"), nullptr);
    EXPECT_EQ(*s.get("DATESTYLE"), "ISO");
    s.set("datestyle", "SQL");
    EXPECT_EQ(s.values().size(), 1u);
}

TEST(SessionSettings, SyncSendsOnlyTheDifference) {
    SessionSettings have, want;
    EXPECT_EQ(settings_sync_sql(have, want), "");
    want.set("application_name", "psql");
    want.set("TimeZone", "UTC");
    EXPECT_EQ(settings_sync_sql(have, want),
              "SELECT pg_catalog.set_config(E'application_name', E'psql', false), "
              "pg_catalog.set_config(E'timezone', E'UTC', false)");
    have = want;
    EXPECT_EQ(settings_sync_sql(have, want), "");
    have.set("search_path", "x");
    EXPECT_EQ(settings_sync_sql(have, want), "RESET \"search_path\";");
}

TEST(SessionSettings, ValuesCannotBreakOutOfTheLiteral) {
    SessionSettings have, want;
    want.set("application_name", "x'); DROP TABLE t; --\\");
    EXPECT_EQ(settings_sync_sql(have, want),
              "SELECT pg_catalog.set_config(E'application_name', E'x''); DROP TABLE t; --\\\\', false)");
    EXPECT_EQ(quote_identifier("a\"b"), "\"a\"\"b\"");
}

// Copies share one map until one of them changes: the change is the changer's alone, and the
// versions tell the two apart from then on.
TEST(SessionSettings, CopiesShareUntilOneChanges) {
    SessionSettings startup;
    startup.set("application_name", "app");
    startup.set("DateStyle", "ISO");
    SessionSettings current = startup;
    EXPECT_TRUE(current == startup);
    EXPECT_EQ(&current.values(), &startup.values()) << "one map for both";
    current.set("DateStyle", "German");
    EXPECT_EQ(*startup.get("datestyle"), "ISO");
    EXPECT_EQ(*current.get("datestyle"), "German");
    EXPECT_FALSE(current == startup);
    SessionSettings other = startup;
    other.erase("application_name");
    EXPECT_NE(startup.get("application_name"), nullptr) << "erase changes only the copy";
    EXPECT_EQ(other.get("application_name"), nullptr);
    EXPECT_NE(other.version(), startup.version());
    current.set("DateStyle", "ISO");
    EXPECT_TRUE(current == startup) << "equal contents compare equal whatever their versions";
}
