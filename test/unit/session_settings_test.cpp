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
