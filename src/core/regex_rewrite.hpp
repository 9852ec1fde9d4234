// The pure halves of a rewrite rule (pg_rproxy_rewrite_rules), spelled as regexp_replace spells
// them: its flags string, and its replacement text with \1..\9, \& and \\. The pg layer compiles
// and runs the pattern with PostgreSQL's own regex engine; these decide what it is told and what
// a match becomes.
#pragma once
#include "core/pure_layer.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace rproxy {

// What regexp_replace's flags string asks for (PostgreSQL's parse_re_flags, letter by letter: a
// later letter overrides an earlier one).
struct RegexOptions {
    enum class Syntax { Advanced, Extended, Basic, Quote };
    Syntax syntax = Syntax::Advanced;
    bool glob = false;        // g: every match, not only the first
    bool icase = false;       // i (c undoes it)
    bool nlstop = false;      // n, m, p: . and bracket expressions stop at newlines
    bool nlanch = false;      // n, m, w: ^ and $ match at newlines
    bool expanded = false;    // x (t undoes it)
};

// nullopt when a letter is not one regexp_replace knows; *bad is then that letter.
std::optional<RegexOptions> parse_regex_flags(std::string_view flags, char* bad = nullptr);

// A match, as byte offsets into the subject: groups[0] the whole match, groups[n] the n-th
// parenthesised subexpression; -1 for a group that did not take part.
struct RegexSpan {
    long start = -1;
    long end = -1;
};
constexpr int kRegexGroups = 10;  // \0 (\&) .. \9, as regexp_replace

// Appends replacement with its escapes substituted from subject: \1..\9 a group (empty when it
// did not match), \& the whole match, \\ one backslash; a backslash before anything else stays.
void append_substitution(std::string& out, std::string_view replacement, std::string_view subject,
                         const RegexSpan (&groups)[kRegexGroups]);

}  // namespace rproxy
