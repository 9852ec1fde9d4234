// The pure halves of rewrite rules and the statement hook: regexp_replace's flags and replacement
// escapes, and the hook's context as JSON.
#include <gtest/gtest.h>

#include "core/regex_rewrite.hpp"
#include "core/json_text.hpp"
#include "core/statement_hook.hpp"

namespace rproxy {
namespace {

TEST(RegexFlags, EachLetterAsRegexpReplaceReadsIt) {
    auto o = parse_regex_flags("");
    ASSERT_TRUE(o);
    EXPECT_FALSE(o->glob);
    EXPECT_EQ(o->syntax, RegexOptions::Syntax::Advanced);
    o = parse_regex_flags("gi");
    ASSERT_TRUE(o);
    EXPECT_TRUE(o->glob);
    EXPECT_TRUE(o->icase);
    o = parse_regex_flags("ic");  // c after i: case sensitive again
    ASSERT_TRUE(o);
    EXPECT_FALSE(o->icase);
    o = parse_regex_flags("n");
    EXPECT_TRUE(o->nlstop && o->nlanch);
    o = parse_regex_flags("ns");
    EXPECT_FALSE(o->nlstop || o->nlanch);
    o = parse_regex_flags("p");
    EXPECT_TRUE(o->nlstop && !o->nlanch);
    o = parse_regex_flags("w");
    EXPECT_TRUE(!o->nlstop && o->nlanch);
    o = parse_regex_flags("xt");
    EXPECT_FALSE(o->expanded);
    EXPECT_TRUE(parse_regex_flags("x")->expanded);
    EXPECT_EQ(parse_regex_flags("q")->syntax, RegexOptions::Syntax::Quote);
    EXPECT_EQ(parse_regex_flags("qb")->syntax, RegexOptions::Syntax::Basic);
    EXPECT_EQ(parse_regex_flags("e")->syntax, RegexOptions::Syntax::Extended);
}

TEST(RegexFlags, AnUnknownLetterIsRefusedAndNamed) {
    char bad = 0;
    EXPECT_FALSE(parse_regex_flags("gz", &bad));
    EXPECT_EQ(bad, 'z');
    EXPECT_FALSE(parse_regex_flags("G", &bad));
    EXPECT_EQ(bad, 'G');
}

std::string substitute(std::string_view replacement, std::string_view subject,
                       std::initializer_list<RegexSpan> spans) {
    RegexSpan groups[kRegexGroups];
    int i = 0;
    for (const auto& s : spans) groups[i++] = s;
    std::string out;
    append_substitution(out, replacement, subject, groups);
    return out;
}

TEST(RegexSubstitution, GroupsWholeMatchAndBackslashes) {
    // subject "abc-def": whole match 0..7, \1 = "abc", \2 = "def"
    const std::string_view s = "abc-def";
    EXPECT_EQ(substitute("\\2-\\1", s, {{0, 7}, {0, 3}, {4, 7}}), "def-abc");
    EXPECT_EQ(substitute("[\\&]", s, {{0, 7}}), "[abc-def]");
    EXPECT_EQ(substitute("a\\\\b", s, {{0, 7}}), "a\\b");
    EXPECT_EQ(substitute("plain", s, {{0, 7}}), "plain");
}

TEST(RegexSubstitution, WhatIsNotAnEscapeStaysAsWritten) {
    const std::string_view s = "xy";
    EXPECT_EQ(substitute("\\n", s, {{0, 2}}), "\\n");
    EXPECT_EQ(substitute("end\\", s, {{0, 2}}), "end\\");
    EXPECT_EQ(substitute("\\0", s, {{0, 2}}), "\\0");  // \0 is not \&
    // A group that did not take part, or one the pattern does not have, is empty.
    EXPECT_EQ(substitute("<\\1|\\9>", s, {{0, 2}, {-1, -1}}), "<|>");
}

TEST(HookContext, FieldsAsJsonWithNullsForWhatIsMissing) {
    HookContext c;
    c.role = "alice";
    c.database = "db\"1";
    c.client_address = "10.0.0.1";
    c.protocol = "simple";
    EXPECT_EQ(hook_context_json(c),
              "{\"role\": \"alice\", \"database\": \"db\\\"1\", \"server_name\": null, \"upstream\": null, "
              "\"client_address\": \"10.0.0.1\", \"application_name\": \"\", \"protocol\": \"simple\"}");
}

TEST(HookContext, ControlCharactersAreEscaped) {
    std::string out;
    append_json_string(out, std::string("a\nb\x01\\\x7f", 6));
    EXPECT_EQ(out, "\"a\\nb\\u0001\\\\\\u007f\"");
}

TEST(HookContext, RefusalIs42501WithTheDocumentedMessage) {
    ErrorFields e = hook_refusal();
    EXPECT_EQ(*e.find('C'), "42501");
    EXPECT_EQ(*e.find('M'), "statement refused by pg_rproxy.statement_hook");
}

}  // namespace
}  // namespace rproxy
