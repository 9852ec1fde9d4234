#include <gtest/gtest.h>

#include "core/quick_scan.hpp"

using rproxy::quick_scan;
using rproxy::ScannedQuery;

namespace {
// The forms, with the shape's placeholders written as ?<kind>; "(server)" when left to the server.
std::string forms(std::string_view sql) {
    ScannedQuery q;
    if (!quick_scan(sql, q)) return "(server)";
    EXPECT_TRUE(q.ok);
    std::string shape;
    for (char c : q.shape) shape += c == '\x01' ? '?' : c;
    return q.normalized + " | " + shape;
}
}  // namespace

TEST(QuickScan, PlainStatementsComeOutAsTheServersScannerPrintsThem) {
    EXPECT_EQ(forms("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"),
              "select abalance from pgbench_accounts where aid = 12345 ; | "
              "select abalance from pgbench_accounts where aid = ?i ;");
    EXPECT_EQ(forms("select a,b from T1 where x<>'it''s'\n\tand y != $2"),
              "select a , b from t1 where x <> 'it''s' and y <> $2 | select a , b from t1 where x <> ?s and y <> $2");
    EXPECT_EQ(forms("SELECT t.*, s.a::int4 FROM t JOIN s ON s.id >= t.id"),
              "select t . * , s . a :: int4 from t join s on s . id >= t . id | "
              "select t . * , s . a :: int4 from t join s on s . id >= t . id");
    EXPECT_EQ(forms("SELECT -1, 007, 2147483647, 2147483648, ''"),
              "select - 1 , 7 , 2147483647 , 2147483648 , '' | select - ?i , ?i , ?i , ?f , ?s");
    EXPECT_EQ(forms("SELECT $01, a[1] % 2"), "select $1 , a [ 1 ] % 2 | select $1 , a [ ?i ] % ?i");
    EXPECT_EQ(forms("SELECT 1::float(24), treat(1 AS FLOAT (53))"),
              "select 1 :: float ( 24 ) , treat ( 1 as float ( 53 ) ) | select ?i :: float ( 24 ) , treat ( ?i as float ( 53 ) )");
    EXPECT_EQ(forms(""), " | ");
    EXPECT_EQ(forms("  \n "), " | ");
}

TEST(QuickScan, AnythingUnusualIsLeftToTheServersScanner) {
    for (const char* sql : {
             "SELECT \"Quoted\"", "SELECT E'\\n'", "SELECT 'a\\b'", "SELECT B'101'", "SELECT X'ff'", "SELECT N'x'",
             "SELECT U&'\\0041'", "SELECT U&\"x\" UESCAPE '!'", "SELECT uescape FROM t", "SELECT $$x$$",
             "SELECT $tag$x$tag$", "SELECT 1.5", "SELECT .5", "SELECT 1e3", "SELECT 12abc", "SELECT a$b",
             "SELECT 1 -- comment", "SELECT /* c */ 1", "SELECT a=-1", "SELECT 'a' 'b'", "SELECT 'a'\n'b'",
             "SELECT 'unterminated", "SELECT a ~ b", "SELECT a || b", "SELECT a ^ 2", "SELECT a := 1",
             "SELECT a:b", "SELECT a:::b", "SELECT 1..2", "SELECT a.1", "SELECT a. b", "SELECT $1x", "SELECT $",
             "SELECT $1234567890", "SELECT \xc3\xa9", "SELECT '\xc3\xa9'", "SELECT 1 => 2", "SELECT a @> b",
             "SELECT {1}", "SELECT a\vb",
         })
        EXPECT_EQ(forms(sql), "(server)") << sql;
    std::string with_nul("SELECT 1\0; DELETE FROM t", 24);
    EXPECT_EQ(forms(with_nul), "(server)");
    std::string quoted_nul("SELECT '\0'", 10);
    EXPECT_EQ(forms(quoted_nul), "(server)");
    EXPECT_EQ(forms("SELECT " + std::string(64, 'a')), "(server)");  // truncated by the server
    EXPECT_EQ(forms("SELECT " + std::string(63, 'a')), "select " + std::string(63, 'a') + " | select " + std::string(63, 'a'));
}
