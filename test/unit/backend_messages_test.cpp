#include <gtest/gtest.h>

#include <string>

#include "protocol/backend_messages.hpp"

using namespace rproxy;
using namespace rproxy::protocol;

TEST(BackendMessages, ExactBytes) {
    std::string out;
    append_authentication_ok(out);
    EXPECT_EQ(out, std::string("R\0\0\0\x08\0\0\0\0", 9));
    out.clear();
    append_ready_for_query(out, 'I');
    EXPECT_EQ(out, std::string("Z\0\0\0\x05I", 6));
    out.clear();
    append_parameter_status(out, "TimeZone", "UTC");
    EXPECT_EQ(out, std::string("S\0\0\0\x11TimeZone\0UTC\0", 18));
    out.clear();
    append_backend_key_data(out, 1, 2);
    EXPECT_EQ(out, std::string("K\0\0\0\x0c\0\0\0\x01\0\0\0\x02", 13));
    out.clear();
    append_command_complete(out, "SELECT 1");
    EXPECT_EQ(out, std::string("C\0\0\0\x0dSELECT 1\0", 14));
    out.clear();
    append_empty_query_response(out);
    EXPECT_EQ(out, std::string("I\0\0\0\x04", 5));
}

TEST(BackendMessages, ErrorAndNoticeFieldsInOrder) {
    auto e = ErrorFields::make("ERROR", "25006", "no", 7);
    std::string out;
    append_error(out, e);
    EXPECT_EQ(out, std::string("E\0\0\0\x21SERROR\0VERROR\0C25006\0Mno\0P7\0\0", 34));
    out.clear();
    append_error(out, e, true);
    EXPECT_EQ(out[0], 'N');
}
