// Decoding what servers send: the proxy's own backend builders and hand-built messages round trip,
// and malformed bodies are refused instead of read past their end.
#include <gtest/gtest.h>

#include "protocol/backend_decode.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/extended_messages.hpp"
#include "protocol/message_writer.hpp"

using namespace rproxy;
using namespace rproxy::protocol;

namespace {

BackendMessage one(const std::string& wire) {
    std::size_t used = 0;
    auto m = decode_backend_message(wire, 1 << 30, used);
    EXPECT_TRUE(m);
    EXPECT_EQ(used, wire.size());
    return *m;
}

std::string msg(char type, const std::string& body) {
    std::string s;
    MessageWriter(s, type).bytes(body.data(), body.size());
    return s;
}

std::string be32s(uint32_t v) {
    std::string s;
    MessageWriter::put32(s, v);
    return s;
}

std::string be16s(uint16_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v)}; }

}  // namespace

TEST(BackendDecode, Framing) {
    std::size_t used = 0;
    EXPECT_FALSE(decode_backend_message("", 100, used));
    EXPECT_FALSE(decode_backend_message("Z\0\0\0", 100, used));
    EXPECT_THROW(decode_backend_message(std::string("Q\0\0\0\4", 5), 100, used), ProtocolError);  // a frontend type
    EXPECT_THROW(decode_backend_message(std::string("Z\0\0\0\3", 5), 100, used), ProtocolError);
    try {
        decode_backend_message(std::string("D\0\0\0\x65", 5), 100, used);
        FAIL();
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.sqlstate(), "54000");
    }
    std::string two;
    append_ready_for_query(two, 'I');
    append_ready_for_query(two, 'T');
    auto first = decode_backend_message(two, 100, used);
    ASSERT_TRUE(first);
    EXPECT_EQ(used, 6u);
    EXPECT_EQ(decode_ready_for_query(first->body), 'I');
}

TEST(BackendDecode, TakenMessagesSurviveLaterReads) {
    InputBuffer in;
    std::string wire;
    append_command_complete(wire, "SELECT 1");
    std::string big = msg('d', std::string(300 * 1024, 'x'));
    std::string both = wire + big.substr(0, 10);
    in.append(both.data(), both.size());
    auto m = take_backend_message(in, 1 << 30);
    ASSERT_TRUE(m);
    in.append(big.data() + 10, big.size() - 10);
    EXPECT_EQ(decode_command_complete(m->body), "SELECT 1");
    auto d = take_backend_message(in, 1 << 30);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->body.size(), 300u * 1024);
}

TEST(BackendDecode, MessagesTheProxyBuildsRoundTrip) {
    std::string out;
    append_authentication_ok(out);
    auto a = decode_authentication(one(out).body);
    EXPECT_EQ(a.code, 0);
    EXPECT_TRUE(a.data.empty());

    out.clear();
    append_parameter_status(out, "TimeZone", "Europe/Zurich");
    auto ps = decode_parameter_status(one(out).body);
    EXPECT_EQ(ps.name, "TimeZone");
    EXPECT_EQ(ps.value, "Europe/Zurich");

    out.clear();
    append_backend_key_data(out, 77, -5);
    auto k = decode_backend_key_data(one(out).body);
    EXPECT_EQ(k.pid, 77);
    EXPECT_EQ(k.key, -5);

    out.clear();
    append_notification(out, 9, "chan", "payload");
    auto n = decode_notification(one(out).body);
    EXPECT_EQ(n.pid, 9);
    EXPECT_EQ(n.channel, "chan");
    EXPECT_EQ(n.payload, "payload");

    out.clear();
    ErrorFields e = ErrorFields::make("ERROR", "42P01", "relation \"x\" does not exist", 15);
    e.add('F', "parse_relation.c");
    append_error(out, e);
    EXPECT_EQ(decode_error_response(one(out).body).fields, e.fields);

    out.clear();
    append_parameter_description(out, {23, 25, 17});
    EXPECT_EQ(decode_parameter_description(one(out).body), (std::vector<uint32_t>{23, 25, 17}));
}

TEST(BackendDecode, RowDescriptionAndDataRow) {
    std::string body = be16s(2);
    body += std::string("id\0", 3) + be32s(16384) + be16s(1) + be32s(23) + be16s(4) + be32s(0xffffffff) + be16s(0);
    body += std::string("h\0", 2) + be32s(0) + be16s(0) + be32s(25) + be16s(0xffff) + be32s(0xffffffff) + be16s(1);
    std::string t = msg('T', body);  // decoded views point into it
    auto fields = decode_row_description(one(t).body);
    ASSERT_EQ(fields.size(), 2u);
    EXPECT_EQ(fields[0].name, "id");
    EXPECT_EQ(fields[0].table_oid, 16384u);
    EXPECT_EQ(fields[0].column, 1);
    EXPECT_EQ(fields[0].type_oid, 23u);
    EXPECT_EQ(fields[0].type_size, 4);
    EXPECT_EQ(fields[0].type_modifier, -1);
    EXPECT_EQ(fields[1].type_size, -1);
    EXPECT_EQ(fields[1].format, 1);

    std::string row = be16s(3) + be32s(2) + "42" + be32s(0xffffffff) + be32s(0);
    std::string d = msg('D', row);
    auto values = decode_data_row(one(d).body);
    ASSERT_EQ(values.size(), 3u);
    EXPECT_EQ(*values[0], "42");
    EXPECT_FALSE(values[1]);
    EXPECT_EQ(*values[2], "");
}

TEST(BackendDecode, CopyFunctionAndNegotiation) {
    auto c = decode_copy_response(one(msg('H', std::string(1, '\0') + be16s(2) + be16s(0) + be16s(1))).body);
    EXPECT_EQ(c.format, 0);
    EXPECT_EQ(c.column_formats, (std::vector<int16_t>{0, 1}));
    EXPECT_EQ(*decode_function_call_response(one(msg('V', be32s(3) + "abc")).body), "abc");
    EXPECT_FALSE(decode_function_call_response(one(msg('V', be32s(0xffffffff))).body));
    std::string wire = msg('v', be32s(0) + be32s(2) + std::string("_pq_.a\0_pq_.b\0", 14));
    auto v = decode_negotiate_protocol_version(one(wire).body);
    EXPECT_EQ(v.newest_minor, 0);
    EXPECT_EQ(v.unrecognized_options, (std::vector<std::string_view>{"_pq_.a", "_pq_.b"}));
    EXPECT_EQ(decode_authentication(one(msg('R', be32s(5) + "salt")).body).data, "salt");
}

TEST(BackendDecode, MalformedBodiesAreRefused) {
    auto refused = [](auto decode, const std::string& body) {
        EXPECT_THROW(decode(body), ProtocolError) << "body of " << body.size() << " bytes";
    };
    refused(decode_ready_for_query, "X");
    refused(decode_ready_for_query, "II");
    refused(decode_ready_for_query, "");
    refused(decode_parameter_status, std::string("name\0value", 10));  // unterminated value
    refused(decode_backend_key_data, be32s(1));
    refused(decode_command_complete, std::string("SELECT 1\0x", 10));
    refused(decode_error_response, std::string("Sfatal", 6));
    refused(decode_error_response, std::string("SERROR\0", 7));  // no terminator
    refused(decode_row_description, be16s(0xffff));  // a count no body could hold
    refused(decode_row_description, be16s(1) + std::string("id\0", 3) + be32s(1));  // a column cut short
    refused(decode_data_row, be16s(1) + be32s(0x7fffffff) + "ab");  // a length past the end
    refused(decode_data_row, be16s(1) + be32s(0xfffffffe));  // -2
    refused(decode_data_row, be16s(2) + be32s(0));  // fewer columns than counted
    refused(decode_parameter_description, be16s(2) + be32s(23));
    refused(decode_copy_response, std::string(1, '\2') + be16s(0));
    refused(decode_function_call_response, be32s(5) + "abc");
    refused(decode_negotiate_protocol_version, be32s(0) + be32s(0x7fffffff));
    refused(decode_notification, be32s(1) + std::string("chan\0", 5));
}
