#include <gtest/gtest.h>

#include <string>

#include "protocol/frontend_messages.hpp"
#include "protocol/message_writer.hpp"

using namespace rproxy::protocol;

namespace {

std::string be32(uint32_t v) {
    std::string s;
    MessageWriter::put32(s, v);
    return s;
}

std::string startup(uint32_t code, const std::string& payload) {
    return be32(static_cast<uint32_t>(8 + payload.size())) + be32(code) + payload;
}

std::string expect_violation(std::string_view buf) {
    std::size_t used = 0;
    try {
        decode_startup_packet(buf, used);
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.sqlstate(), "08P01");
        return e.what();
    }
    ADD_FAILURE() << "no ProtocolError";
    return "";
}

}  // namespace

TEST(StartupPacket, DecodesParameters) {
    std::string pkt = startup(kProtocolVersion30, std::string("user\0alice\0database\0db\0application_name\0psql\0\0", 46));
    std::size_t used = 0;
    auto p = decode_startup_packet(pkt, used);
    ASSERT_TRUE(p);
    EXPECT_EQ(used, pkt.size());
    EXPECT_EQ(p->kind, StartupPacket::Kind::Startup);
    ASSERT_NE(p->param("user"), nullptr);
    EXPECT_EQ(*p->param("user"), "alice");
    EXPECT_EQ(*p->param("database"), "db");
    EXPECT_EQ(*p->param("application_name"), "psql");
    EXPECT_EQ(p->param("options"), nullptr);
}

TEST(StartupPacket, WaitsForMoreBytes) {
    std::string pkt = startup(kProtocolVersion30, std::string("user\0a\0\0", 8));
    for (std::size_t n = 0; n < pkt.size(); ++n) {
        std::size_t used = 0;
        EXPECT_FALSE(decode_startup_packet(std::string_view(pkt).substr(0, n), used)) << n;
    }
}

TEST(StartupPacket, SslGssAndCancel) {
    std::size_t used = 0;
    auto ssl = decode_startup_packet(startup(kSslRequestCode, ""), used);
    ASSERT_TRUE(ssl);
    EXPECT_EQ(ssl->kind, StartupPacket::Kind::SslRequest);
    auto gss = decode_startup_packet(startup(kGssEncRequestCode, ""), used);
    EXPECT_EQ(gss->kind, StartupPacket::Kind::GssEncRequest);
    auto cancel = decode_startup_packet(startup(kCancelRequestCode, be32(1234) + be32(0xdeadbeef)), used);
    ASSERT_TRUE(cancel);
    EXPECT_EQ(cancel->kind, StartupPacket::Kind::CancelRequest);
    EXPECT_EQ(cancel->cancel_pid, 1234);
    EXPECT_EQ(static_cast<uint32_t>(cancel->cancel_key), 0xdeadbeefu);
}

TEST(StartupPacket, RejectsOtherProtocolVersions) {
    std::string msg = expect_violation(startup(2u << 16, std::string("user\0a\0\0", 8)));
    EXPECT_NE(msg.find("unsupported frontend protocol 2.0"), std::string::npos);
    msg = expect_violation(startup((3u << 16) | 2, std::string("user\0a\0\0", 8)));
    EXPECT_NE(msg.find("3.2"), std::string::npos);
}

TEST(StartupPacket, RejectsBadLengthsWithoutWaitingForThem) {
    // 2^31-1 claimed: rejected from the 4 length bytes alone, nothing allocated for it.
    EXPECT_NE(expect_violation(be32(0x7fffffff)).find("invalid length"), std::string::npos);
    expect_violation(be32(4) + be32(kProtocolVersion30));
    expect_violation(be32(10001));
    // An HTTP request sent to the proxy port.
    expect_violation("GET / HTTP/1.1\r\n");
    // SSLRequest with a payload.
    expect_violation(startup(kSslRequestCode, "xx"));
}

TEST(StartupPacket, RejectsBrokenLayout) {
    expect_violation(startup(kProtocolVersion30, std::string("user\0alice\0", 11)));  // no terminator
    expect_violation(startup(kProtocolVersion30, std::string("user\0alice", 10)));     // unterminated value
    expect_violation(startup(kProtocolVersion30, std::string("\0", 1)));               // no user
    expect_violation(startup(kProtocolVersion30, std::string("user\0\0\0", 7)));       // empty user
    expect_violation(startup(kProtocolVersion30, std::string("user\0a\0\0x", 9)));     // data after terminator
}

TEST(FrontendMessage, FramesAndWaits) {
    std::string q = "Q" + be32(4 + 9) + std::string("select 1\0", 9);
    std::string two = q + "X" + be32(4);
    std::size_t used = 0;
    auto m = decode_message(two, 1 << 20, used);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->type, 'Q');
    EXPECT_EQ(used, q.size());
    EXPECT_EQ(decode_query(m->body), "select 1");
    auto x = decode_message(std::string_view(two).substr(used), 1 << 20, used);
    ASSERT_TRUE(x);
    EXPECT_EQ(x->type, 'X');
    EXPECT_TRUE(x->body.empty());
    for (std::size_t n = 0; n < q.size(); ++n)
        EXPECT_FALSE(decode_message(std::string_view(q).substr(0, n), 1 << 20, used)) << n;
}

TEST(FrontendMessage, RejectsUnknownTypeAndBadLengths) {
    std::size_t used = 0;
    try {
        decode_message("\x01\0\0\0\x04", 100, used);
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.sqlstate(), "08P01");
        EXPECT_STREQ(e.what(), "invalid frontend message type 1");
    }
    EXPECT_THROW(decode_message("Q" + be32(3), 100, used), ProtocolError);
    try {
        decode_message("Q" + be32(0x7fffffff), 16 << 20, used);
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.sqlstate(), "54000");
    }
}

TEST(FrontendMessage, QueryMustBeOneString) {
    EXPECT_THROW(decode_query(std::string_view("select 1", 8)), ProtocolError);
    EXPECT_THROW(decode_query(std::string_view("select 1\0x\0", 11)), ProtocolError);
    EXPECT_EQ(decode_query(std::string_view("\0", 1)), "");
}

TEST(StartupOptions, ParsesDashCAndLongForms) {
    auto s = parse_startup_options("-c search_path=a\\ b  --statement-timeout=5s -cDateStyle=ISO");
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0].first, "search_path");
    EXPECT_EQ(s[0].second, "a b");
    EXPECT_EQ(s[1].first, "statement_timeout");
    EXPECT_EQ(s[1].second, "5s");
    EXPECT_EQ(s[2].first, "DateStyle");
    EXPECT_EQ(s[2].second, "ISO");
    EXPECT_TRUE(parse_startup_options("   ").empty());
    EXPECT_THROW(parse_startup_options("-c"), ProtocolError);
    EXPECT_THROW(parse_startup_options("-x"), ProtocolError);
    EXPECT_THROW(parse_startup_options("-c novalue"), ProtocolError);
}
