// The frontend builders, checked by decoding what they build with the decoders the proxy uses for
// its own clients.
#include <gtest/gtest.h>

#include "protocol/auth_messages.hpp"
#include "protocol/extended_messages.hpp"
#include "protocol/frontend_encode.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/protocol_error.hpp"

using namespace rproxy::protocol;

namespace {
FrontendMessage one(const std::string& wire) {
    std::size_t used = 0;
    auto m = decode_message(wire, 1 << 30, used);
    EXPECT_TRUE(m);
    EXPECT_EQ(used, wire.size());
    return *m;
}
}  // namespace

TEST(FrontendEncode, StartupCancelAndSslRequest) {
    std::string out;
    append_startup_message(out, {{"user", "alice"}, {"database", "db"}, {"application_name", ""}});
    std::size_t used = 0;
    auto p = decode_startup_packet(out, used);
    ASSERT_TRUE(p);
    EXPECT_EQ(used, out.size());
    EXPECT_EQ(*p->param("user"), "alice");
    EXPECT_EQ(*p->param("application_name"), "");
    out.clear();
    append_cancel_request(out, 0x01020304, -7);
    p = decode_startup_packet(out, used);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, StartupPacket::Kind::CancelRequest);
    EXPECT_EQ(p->cancel_pid, 0x01020304);
    EXPECT_EQ(p->cancel_key, -7);
    out.clear();
    append_ssl_request(out);
    EXPECT_EQ(decode_startup_packet(out, used)->kind, StartupPacket::Kind::SslRequest);
}

TEST(FrontendEncode, ExtendedMessagesRoundTrip) {
    std::string out;
    std::vector<uint32_t> types(40000, 23);  // more than a signed 16-bit count holds
    append_parse(out, "s1", "SELECT $1", types);
    auto parse = decode_parse(one(out).body);
    EXPECT_EQ(parse.name, "s1");
    EXPECT_EQ(parse.query, "SELECT $1");
    EXPECT_EQ(parse.param_types, types);

    out.clear();
    std::string blob("\0\1\2", 3);
    append_bind(out, "p", "s1", {0, 1}, {std::string_view("42"), std::nullopt, std::string_view(blob)}, {1});
    auto bind = decode_bind(one(out).body);
    EXPECT_EQ(bind.portal, "p");
    EXPECT_EQ(bind.statement, "s1");
    EXPECT_EQ(bind.param_formats, (std::vector<int16_t>{0, 1}));
    ASSERT_EQ(bind.params.size(), 3u);
    EXPECT_EQ(*bind.params[0], "42");
    EXPECT_FALSE(bind.params[1]);
    EXPECT_EQ(*bind.params[2], blob);
    EXPECT_EQ(bind.result_formats, (std::vector<int16_t>{1}));

    out.clear();
    append_describe(out, 'P', "p");
    auto d = decode_target(one(out).body, "Describe");
    EXPECT_EQ(d.kind, 'P');
    EXPECT_EQ(d.name, "p");
    out.clear();
    append_execute(out, "p", 10);
    auto e = decode_execute(one(out).body);
    EXPECT_EQ(e.portal, "p");
    EXPECT_EQ(e.max_rows, 10);
    out.clear();
    append_close(out, 'S', "s1");
    EXPECT_EQ(decode_target(one(out).body, "Close").kind, 'S');
}

TEST(FrontendEncode, SimpleCopyAndControlMessages) {
    std::string out;
    append_query(out, "SELECT 1");
    EXPECT_EQ(decode_query(one(out).body), "SELECT 1");
    for (auto [build, type] : std::vector<std::pair<void (*)(std::string&), char>>{
             {append_sync, 'S'}, {append_flush, 'H'}, {append_terminate, 'X'}, {append_copy_done, 'c'}}) {
        out.clear();
        build(out);
        auto m = one(out);
        EXPECT_EQ(m.type, type);
        EXPECT_TRUE(m.body.empty());
    }
    out.clear();
    append_copy_data(out, std::string(70000, 'x'));
    EXPECT_EQ(one(out).body.size(), 70000u);
    out.clear();
    append_copy_fail(out, "stop");
    EXPECT_EQ(one(out).body, std::string_view("stop\0", 5));
}

TEST(FrontendEncode, PasswordFamily) {
    std::string out;
    append_password_message(out, "secret");
    EXPECT_EQ(decode_password_message(one(out).body), "secret");
    out.clear();
    append_sasl_initial_response(out, "SCRAM-SHA-256", std::string_view("n,,n=,r=abc"));
    auto r = decode_sasl_initial_response(one(out).body);
    EXPECT_EQ(r.mechanism, "SCRAM-SHA-256");
    EXPECT_EQ(r.data, "n,,n=,r=abc");
    out.clear();
    append_sasl_initial_response(out, "SCRAM-SHA-256", std::nullopt);
    EXPECT_TRUE(decode_sasl_initial_response(one(out).body).data.empty());
    out.clear();
    append_sasl_response(out, "c=biws");
    EXPECT_EQ(one(out).body, "c=biws");
}

TEST(FrontendEncode, FunctionCall) {
    std::string out;
    append_function_call(out, 954, {1}, {std::string_view("\0\0\0\1", 4), std::string_view("\0\0\x10\0", 4)}, 1);
    auto m = one(out);
    EXPECT_EQ(m.type, 'F');
    // oid, 1 format, 2 arguments of 4 bytes, result format
    EXPECT_EQ(m.body.size(), 4u + 2 + 2 + 2 + 2 * (4 + 4) + 2);
}

TEST(FrontendEncode, CountsBeyondSixteenBitsThrow) {
    std::string out;
    EXPECT_THROW(append_parse(out, "", "SELECT", std::vector<uint32_t>(65536, 23)), std::length_error);
    std::vector<std::optional<std::string_view>> many(65536, std::nullopt);
    EXPECT_THROW(append_bind(out, "", "", {}, many, {}), std::length_error);
    EXPECT_TRUE(out.empty()) << "nothing half-built is left behind";
    append_parse(out, "", "SELECT", std::vector<uint32_t>(65535, 23));  // the server's own limit
    EXPECT_EQ(decode_parse(one(out).body).param_types.size(), 65535u);
}

TEST(FrontendEncode, BindReaddressedToAnotherStatementKeepsEverythingElse) {
    std::string original;
    std::vector<std::optional<std::string_view>> params{std::string_view("\0\0\0\x2a", 4), std::nullopt,
                                                        std::string_view("text")};
    append_bind(original, "portal", "client_name", {1, 1, 0}, params, {0, 1});
    std::string readdressed;
    append_bind_to(readdressed, one(original).body, "pg_rproxy_7");
    BindMessage a = decode_bind(one(original).body), b = decode_bind(one(readdressed).body);
    EXPECT_EQ(b.portal, "portal");
    EXPECT_EQ(b.statement, "pg_rproxy_7");
    EXPECT_EQ(a.param_formats, b.param_formats);
    EXPECT_EQ(a.params, b.params);
    EXPECT_EQ(a.result_formats, b.result_formats);
    // Only the name changed: the rest of the body is the same bytes.
    EXPECT_EQ(original.substr(5 + 7 + 12), readdressed.substr(5 + 7 + 12));
    EXPECT_THROW(append_bind_to(readdressed, std::string_view("no terminator", 13), "x"), ProtocolError);
}
