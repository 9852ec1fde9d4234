#include <gtest/gtest.h>

#include "protocol/extended_messages.hpp"
#include "protocol/backend_decode.hpp"
#include "protocol/message_writer.hpp"

using namespace rproxy::protocol;

namespace {
std::string body_of(const std::string& msg) { return msg.substr(5); }
}  // namespace

TEST(ExtendedMessages, ParseAndBindRoundTrip) {
    std::string p;
    MessageWriter(p, 'P').cstr("s1").cstr("SELECT $1::int").int16(1).int32(23);
    ParseMessage parse = decode_parse(body_of(p));
    EXPECT_EQ(parse.name, "s1");
    EXPECT_EQ(parse.query, "SELECT $1::int");
    ASSERT_EQ(parse.param_types.size(), 1u);
    EXPECT_EQ(parse.param_types[0], 23u);

    std::string b;
    MessageWriter(b, 'B').cstr("").cstr("s1").int16(1).int16(1).int16(2).int32(4).bytes("\0\0\0\x2a", 4).int32(-1)
        .int16(1).int16(0);
    BindMessage bind = decode_bind(body_of(b));
    EXPECT_EQ(bind.statement, "s1");
    ASSERT_EQ(bind.params.size(), 2u);
    EXPECT_EQ(*bind.params[0], std::string("\0\0\0\x2a", 4));
    EXPECT_FALSE(bind.params[1].has_value());
    EXPECT_EQ(bind.param_formats, std::vector<int16_t>{1});
    EXPECT_EQ(bind.result_formats, std::vector<int16_t>{0});
}

TEST(ExtendedMessages, HostileCountsAndLengthsAreRejected) {
    std::string b;
    MessageWriter(b, 'B').cstr("").cstr("s").int16(0).int16(1).int32(0x7fffffff);  // huge parameter length
    EXPECT_THROW(decode_bind(body_of(b)), ProtocolError);
    std::string c;
    MessageWriter(c, 'B').cstr("").cstr("s").int16(30000);  // more formats than bytes
    EXPECT_THROW(decode_bind(body_of(c)), ProtocolError);
    std::string d;
    MessageWriter(d, 'P').cstr("s").cstr("x").int16(-1);
    EXPECT_THROW(decode_parse(body_of(d)), ProtocolError);
    std::string e;
    MessageWriter(e, 'E').cstr("p").int32(0).int8(1);  // trailing byte
    EXPECT_THROW(decode_execute(body_of(e)), ProtocolError);
    std::string f;
    MessageWriter(f, 'D').int8('X').cstr("p");
    EXPECT_THROW(decode_target(body_of(f), "DESCRIBE"), ProtocolError);
    EXPECT_THROW(decode_parse(std::string_view("s1", 2)), ProtocolError);  // unterminated
}

TEST(ExtendedMessages, SmallBackendMessages) {
    std::string out;
    append_parse_complete(out);
    append_bind_complete(out);
    append_portal_suspended(out);
    append_parameter_description(out, {23, 25});
    EXPECT_EQ(out, std::string("1\0\0\0\x04" "2\0\0\0\x04" "s\0\0\0\x04" "t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\0\x19", 30));
}

TEST(ExtendedMessages, ParseRepeatsComparesNameTextAndTypesWithoutDecoding) {
    auto parse_body = [](const std::string& name, const std::string& sql, std::vector<uint32_t> types) {
        std::string b = name + '\0' + sql + '\0';
        b += static_cast<char>(types.size() >> 8);
        b += static_cast<char>(types.size() & 0xff);
        for (uint32_t t : types)
            for (int shift = 24; shift >= 0; shift -= 8) b += static_cast<char>((t >> shift) & 0xff);
        return b;
    };
    std::string body = parse_body("", "SELECT $1", {23});
    EXPECT_TRUE(parse_repeats(body, "", "SELECT $1", {23}));
    EXPECT_FALSE(parse_repeats(body, "", "SELECT $1", {25})) << "another type";
    EXPECT_FALSE(parse_repeats(body, "", "SELECT $1", {})) << "another count";
    EXPECT_FALSE(parse_repeats(body, "", "SELECT $2", {23})) << "another text";
    EXPECT_FALSE(parse_repeats(body, "s1", "SELECT $1", {23})) << "another name";
    EXPECT_THROW(parse_repeats(body + "x", "", "SELECT $1", {23}), ProtocolError) << "trailing bytes";
    std::string lying = body.substr(0, body.size() - 4);  // the count says 1, no bytes follow
    EXPECT_THROW(parse_repeats(lying, "", "SELECT $1", {23}), ProtocolError);
}

TEST(ExtendedMessages, RowDescriptionForAPortalTakesTheBindsFormats) {
    std::string t;
    MessageWriter(t, 'T').int16(2)
        .cstr("a").int32(16384).int16(1).int32(23).int16(4).int32(-1).int16(0)
        .cstr("b").int32(0).int16(0).int32(25).int16(-1).int32(-1).int16(0);
    std::string body = body_of(t);
    auto formats_of = [](const std::string& msg) {
        std::vector<int16_t> f;
        for (const auto& field : decode_row_description(msg.substr(5))) f.push_back(field.format);
        return f;
    };
    std::string out;
    append_row_description_for(out, body, {});
    EXPECT_EQ(out, t);  // no formats: text, as described
    out.clear();
    append_row_description_for(out, body, {1});
    EXPECT_EQ(formats_of(out), (std::vector<int16_t>{1, 1}));
    out.clear();
    append_row_description_for(out, body, {0, 1});
    EXPECT_EQ(formats_of(out), (std::vector<int16_t>{0, 1}));
    EXPECT_EQ(decode_row_description(out.substr(5))[0].table_oid, 16384u);
    EXPECT_THROW(append_row_description_for(out, body.substr(0, body.size() - 1), {}), ProtocolError);
}
