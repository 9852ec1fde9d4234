#include <gtest/gtest.h>

#include "proxy/told_parameters.hpp"

using namespace rproxy;

TEST(ToldParameters, SharedStartupValuesAndLaterChanges) {
    auto startup = std::make_shared<const ToldParameters::Values>(
        ToldParameters::Values{{"TimeZone", "UTC"}, {"application_name", ""}, {"DateStyle", "ISO, MDY"}});
    ToldParameters a, b;
    a.start(startup);
    b.start(startup);  // clients with the same settings share what they were told
    EXPECT_EQ(startup.use_count(), 3);
    EXPECT_TRUE(a.told("TimeZone", "UTC"));
    EXPECT_FALSE(a.told("TimeZone", "Europe/Zurich"));
    EXPECT_TRUE(a.told("application_name", ""));
    EXPECT_TRUE(a.told("never_reported", ""));  // never told counts as the empty value
    EXPECT_FALSE(a.told("never_reported", "x"));
    a.tell("TimeZone", "Europe/Zurich");
    a.tell("TimeZone", "Asia/Tokyo");
    EXPECT_TRUE(a.told("TimeZone", "Asia/Tokyo"));
    EXPECT_TRUE(b.told("TimeZone", "UTC")) << "another client's changes are its own";
    a.start(startup);  // a new start forgets the changes
    EXPECT_TRUE(a.told("TimeZone", "UTC"));
}
