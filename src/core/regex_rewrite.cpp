#include "core/regex_rewrite.hpp"

namespace rproxy {

std::optional<RegexOptions> parse_regex_flags(std::string_view flags, char* bad) {
    RegexOptions o;
    for (char c : flags) {
        switch (c) {
            case 'g': o.glob = true; break;
            case 'b': o.syntax = RegexOptions::Syntax::Basic; break;
            case 'c': o.icase = false; break;
            case 'e': o.syntax = RegexOptions::Syntax::Extended; break;
            case 'i': o.icase = true; break;
            case 'm':
            case 'n': o.nlstop = o.nlanch = true; break;
            case 'p': o.nlstop = true, o.nlanch = false; break;
            case 'q': o.syntax = RegexOptions::Syntax::Quote; break;
            case 's': o.nlstop = o.nlanch = false; break;
            case 't': o.expanded = false; break;
            case 'w': o.nlstop = false, o.nlanch = true; break;
            case 'x': o.expanded = true; break;
            default:
                if (bad) *bad = c;
                return std::nullopt;
        }
    }
    return o;
}

void append_substitution(std::string& out, std::string_view replacement, std::string_view subject,
                         const RegexSpan (&groups)[kRegexGroups]) {
    std::size_t i = 0;
    const std::size_t n = replacement.size();
    while (i < n) {
        std::size_t slash = replacement.find('\\', i);
        if (slash == std::string_view::npos) {
            out.append(replacement.substr(i));
            return;
        }
        out.append(replacement.substr(i, slash - i));
        i = slash + 1;
        if (i == n) {  // a backslash at the very end is copied, as regexp_replace does
            out += '\\';
            return;
        }
        char c = replacement[i];
        int group;
        if (c >= '1' && c <= '9') group = c - '0';
        else if (c == '&') group = 0;
        else if (c == '\\') {
            out += '\\';
            ++i;
            continue;
        } else {  // not an escape: the backslash is kept and the next character read as text
            out += '\\';
            continue;
        }
        ++i;
        const RegexSpan& g = groups[group];
        if (g.start >= 0 && g.end >= g.start && static_cast<std::size_t>(g.end) <= subject.size())
            out.append(subject.substr(static_cast<std::size_t>(g.start), static_cast<std::size_t>(g.end - g.start)));
    }
}

}  // namespace rproxy
