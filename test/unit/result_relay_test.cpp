// Builds PGresults by hand (libpq's result-construction API) and checks the exact bytes relayed.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "proxy/result_relay.hpp"
#include "proxy/upstream_connection.hpp"

using namespace rproxy;

namespace {

ResultPtr make_rows(bool single_row) {
    ResultPtr r(PQmakeEmptyPGresult(nullptr, single_row ? PGRES_SINGLE_TUPLE : PGRES_TUPLES_OK));
    PGresAttDesc attrs[2];
    std::memset(attrs, 0, sizeof attrs);
    attrs[0].name = const_cast<char*>("id");
    attrs[0].tableid = 16384;
    attrs[0].columnid = 1;
    attrs[0].typid = 23;
    attrs[0].typlen = 4;
    attrs[0].atttypmod = -1;
    attrs[1].name = const_cast<char*>("name");
    attrs[1].typid = 25;
    attrs[1].typlen = -1;
    attrs[1].atttypmod = -1;
    EXPECT_TRUE(PQsetResultAttrs(r.get(), 2, attrs));
    EXPECT_TRUE(PQsetvalue(r.get(), 0, 0, const_cast<char*>("7"), 1));
    EXPECT_TRUE(PQsetvalue(r.get(), 0, 1, nullptr, -1));  // NULL
    return r;
}

const std::string kRowDescription = std::string(
    "T\0\0\0\x32\0\x02"
    "id\0\0\0\x40\0\0\x01\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0"
    "name\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0", 51);
const std::string kDataRow = std::string("D\0\0\0\x0f\0\x02\0\0\0\x01" "7\xff\xff\xff\xff", 16);

}  // namespace

TEST(ResultRelay, RowsWithNull) {
    std::string out;
    ResultRelay relay(out);
    auto r = make_rows(false);
    ASSERT_EQ(relay.relay(r.get()), ResultRelay::Step::Next);
    std::string expected = kRowDescription + kDataRow;
    EXPECT_EQ(out.substr(0, expected.size()), expected);
    EXPECT_EQ(out[expected.size()], 'C');  // CommandComplete follows
}

TEST(ResultRelay, SingleRowModeDescribesOnce) {
    std::string out;
    ResultRelay relay(out);
    auto a = make_rows(true), b = make_rows(true);
    ASSERT_EQ(relay.relay(a.get()), ResultRelay::Step::Next);
    ASSERT_EQ(relay.relay(b.get()), ResultRelay::Step::Next);
    EXPECT_EQ(out, kRowDescription + kDataRow + kDataRow);
}

TEST(ResultRelay, EmptyQueryAndErrorsWithoutSqlstate) {
    std::string out;
    ResultRelay relay(out);
    ResultPtr empty(PQmakeEmptyPGresult(nullptr, PGRES_EMPTY_QUERY));
    ASSERT_EQ(relay.relay(empty.get()), ResultRelay::Step::Next);
    EXPECT_EQ(out, std::string("I\0\0\0\x04", 5));
    // libpq-made error (lost connection): relayed with SQLSTATE 08006.
    ResultPtr err(PQmakeEmptyPGresult(nullptr, PGRES_FATAL_ERROR));
    ErrorFields f = error_fields_of(err.get());
    ASSERT_NE(f.find('C'), nullptr);
    EXPECT_EQ(*f.find('C'), "08006");
    ResultPtr copy_in(PQmakeEmptyPGresult(nullptr, PGRES_COPY_IN));
    EXPECT_EQ(relay.relay(copy_in.get()), ResultRelay::Step::Unsupported);
}

TEST(ResultRelay, CopyOutFraming) {
    std::string out;
    ResultRelay relay(out);
    ResultPtr copy(PQmakeEmptyPGresult(nullptr, PGRES_COPY_OUT));
    EXPECT_EQ(relay.relay(copy.get()), ResultRelay::Step::CopyOut);
    EXPECT_EQ(out, std::string("H\0\0\0\x07\0\0\0", 8));  // text, zero columns
    out.clear();
    relay.copy_data("1\tx\n", 4);
    relay.copy_done();
    EXPECT_EQ(out, std::string("d\0\0\0\x08" "1\tx\n" "c\0\0\0\x04", 14));
}
