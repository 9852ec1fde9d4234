// The message log's summaries: what each message says, decoded without trusting its lengths, and
// secrets never decoded.
#include <gtest/gtest.h>

#include <string>

#include "core/error_fields.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/frontend_encode.hpp"
#include "protocol/message_summary.hpp"

using namespace rproxy::protocol;

namespace {

std::string body_of(const std::string& framed) { return framed.substr(5); }

std::string summary(bool frontend, const std::string& framed, bool* shown = nullptr) {
    std::string out;
    bool s = append_summary(out, frontend, framed[0], body_of(framed));
    if (shown) *shown = s;
    return out;
}

}  // namespace

TEST(MessageSummary, QueryTextIsQuotedAndEscaped) {
    std::string m;
    append_query(m, "select 'a\"b'\n\tfrom \\x");
    EXPECT_EQ(summary(true, m), R"(sql="select 'a\"b'\n\tfrom \\x")");
}

TEST(MessageSummary, BindShowsTextBinaryAndNullParameters) {
    std::string m;
    std::vector<std::optional<std::string_view>> values{std::string_view("abc"), std::nullopt, std::string_view("\x00\x2a", 2)};
    append_bind(m, "p1", "s1", {0, 0, 1}, values, {});
    EXPECT_EQ(summary(true, m), R"(portal="p1" statement="s1" params=("abc",NULL,x'002a'))");
}

TEST(MessageSummary, ParseShowsTextAndTypes) {
    std::string m;
    append_parse(m, "st", "select $1", {23});
    EXPECT_EQ(summary(true, m), R"(statement="st" sql="select $1" types=23)");
}

TEST(MessageSummary, PasswordMessagesAreRedacted) {
    std::string m;
    append_password_message(m, "hunter2");
    bool shown = true;
    std::string s = summary(true, m, &shown);
    EXPECT_EQ(s, "[redacted]");
    EXPECT_FALSE(shown) << "the caller must not dump its bytes";
    std::string cont;
    rproxy::protocol::append_sasl_response(cont, "c=biws,r=nonce,p=proof");
    EXPECT_EQ(summary(true, cont, &shown), "[redacted]");
    EXPECT_FALSE(shown);
}

TEST(MessageSummary, ServerSaslChallengesAreRedacted) {
    std::string m = std::string("R") + std::string("\x00\x00\x00\x0c\x00\x00\x00\x0b", 8) + "salt";
    m[4] = static_cast<char>(m.size() - 1);
    bool shown = true;
    EXPECT_EQ(summary(false, m, &shown), "request=SASLContinue [redacted]");
    EXPECT_FALSE(shown);
}

TEST(MessageSummary, ErrorFieldsAndCommandTag) {
    std::string m;
    append_error(m, rproxy::ErrorFields::make("ERROR", "42P01", "relation \"x\" does not exist"));
    EXPECT_EQ(summary(false, m), R"(severity="ERROR" code="42P01" message="relation \"x\" does not exist")");
    std::string c;
    append_command_complete(c, "SELECT 3");
    EXPECT_EQ(summary(false, c), R"(tag="SELECT 3")");
}

TEST(MessageSummary, MalformedBodiesAreSaidToBe) {
    std::string bind = std::string("B\x00\x00\x00\x0a", 5) + std::string("p\0s\0\x00\x09", 6);  // 9 formats, none there
    EXPECT_EQ(summary(true, bind), "[malformed]");
    std::string long_text(5000, 'x');
    std::string q;
    append_query(q, long_text);
    std::string s = summary(true, q);
    EXPECT_NE(s.find("...(5000 bytes)"), std::string::npos);
    EXPECT_LT(s.size(), 4200u);
}
