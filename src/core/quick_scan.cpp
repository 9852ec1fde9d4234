#include "core/quick_scan.hpp"

#include <charconv>
#include <cstdint>

namespace rproxy {

namespace {

// Character classes, one table lookup per byte (this runs on every statement not seen before).
enum : unsigned char { kOther = 0, kSpace = 1, kLetter = 2, kDigit = 4, kOp = 8 };
struct ClassTable {
    unsigned char at[256] = {};
    constexpr ClassTable() {
        for (char c : {' ', '\t', '\n', '\r', '\f'}) at[static_cast<unsigned char>(c)] = kSpace;
        for (int c = 'a'; c <= 'z'; ++c) at[c] = kLetter;
        for (int c = 'A'; c <= 'Z'; ++c) at[c] = kLetter;
        at[static_cast<unsigned char>('_')] = kLetter;
        for (int c = '0'; c <= '9'; ++c) at[c] = kDigit;
        for (char c : {'~', '!', '@', '#', '^', '&', '|', '`', '?', '+', '-', '*', '/', '%', '<', '>', '='})
            at[static_cast<unsigned char>(c)] = kOp;
    }
};
constexpr ClassTable kClasses;
unsigned char class_of(char c) { return kClasses.at[static_cast<unsigned char>(c)]; }
bool is_space(char c) { return class_of(c) == kSpace; }
bool is_letter(char c) { return class_of(c) == kLetter; }
bool is_digit(char c) { return class_of(c) == kDigit; }
bool is_op_char(char c) { return class_of(c) == kOp; }

// word in lower case is lower (which is in lower case).
bool equals_lower(std::string_view word, std::string_view lower) {
    for (std::size_t k = 0; k < word.size(); ++k) {
        char ch = word[k];
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        if (ch != lower[k]) return false;
    }
    return true;
}

constexpr std::size_t kMaxIdentifier = 63;  // NAMEDATALEN - 1: longer names are truncated

// Builds the normalized form as it goes and the shape at the end, from the literals' places.
class Forms {
public:
    explicit Forms(ScannedQuery& out, std::size_t size) : out_(out) {
        out_.normalized.clear();
        out_.normalized.reserve(size + size / 4);
    }
    // A token printed the same in both forms; lower: ASCII letters in lower case.
    void token(std::string_view text, bool lower = false) {
        separate();
        if (!lower) {
            out_.normalized.append(text);
            return;
        }
        std::size_t at = out_.normalized.size();
        out_.normalized.resize(at + text.size());
        char* to = out_.normalized.data() + at;
        for (char ch : text) *to++ = static_cast<char>(ch | ((ch >= 'A' && ch <= 'Z') ? 0x20 : 0));
    }
    // A literal: its text in the normalized form, a placeholder of its kind in the shape.
    void literal(std::string_view text, char kind) {
        separate();
        if (count_ == kInline) return overflow();
        spans_[count_++] = Span{out_.normalized.size(), text.size(), kind};
        out_.normalized.append(text);
    }
    bool ok() const { return !overflowed_; }
    void finish() {
        out_.shape.clear();
        out_.shape.reserve(out_.normalized.size());
        std::size_t from = 0;
        for (std::size_t k = 0; k < count_; ++k) {
            out_.shape.append(out_.normalized, from, spans_[k].start - from);
            out_.shape += '\x01';
            out_.shape += spans_[k].kind;
            from = spans_[k].start + spans_[k].length;
        }
        out_.shape.append(out_.normalized, from, std::string::npos);
    }

private:
    void separate() {
        if (!out_.normalized.empty()) out_.normalized += ' ';
    }
    void overflow() { overflowed_ = true; }
    struct Span {
        std::size_t start, length;
        char kind;
    };
    static constexpr std::size_t kInline = 32;  // more literals than this: the server's scanner
    ScannedQuery& out_;
    Span spans_[kInline];
    std::size_t count_ = 0;
    bool overflowed_ = false;
};

}  // namespace

bool quick_scan(std::string_view sql, ScannedQuery& out) {
    Forms forms(out, sql.size());
    // The last two tokens, for float(p), whose p stays in the shape as scan_forms keeps it.
    std::string_view before_last, last;
    std::size_t i = 0;
    const std::size_t n = sql.size();
    auto remember = [&](std::string_view tok) {
        before_last = last;
        last = tok;
    };
    while (i < n) {
        char c = sql[i];
        if (is_space(c)) {
            ++i;
            continue;
        }
        if (is_letter(c)) {
            std::size_t start = i;
            while (i < n && (class_of(sql[i]) & (kLetter | kDigit))) ++i;
            // '$' or a high-bit byte continues an identifier; a quote or & right after a word
            // makes a prefixed literal (E'', B'', X'', N'', U&'').
            if (i < n && (sql[i] == '$' || static_cast<unsigned char>(sql[i]) >= 0x80 || sql[i] == '\'' || sql[i] == '"' ||
                          sql[i] == '&'))
                return false;
            std::size_t length = i - start;
            if (length > kMaxIdentifier) return false;
            std::string_view word = sql.substr(start, length);
            // UESCAPE gives the server's scanner no shape (it changes what U& escapes mean).
            if (length == 7 && equals_lower(word, "uescape")) return false;
            // A keyword prints as itself in lower case, an unquoted identifier too.
            forms.token(word, true);
            remember(length == 5 && equals_lower(word, "float") ? "float" : "word");
            continue;
        }
        if (is_digit(c)) {
            std::size_t start = i;
            uint64_t value = 0;
            bool large = false;
            while (i < n && is_digit(sql[i])) {
                value = value * 10 + static_cast<uint64_t>(sql[i] - '0');
                if (value > 0x7fffffffULL) large = true, value = 0x80000000ULL;
                ++i;
            }
            // Decimals, exponents, and a number run into a word are the server's to read.
            if (i < n && (sql[i] == '.' || is_letter(sql[i]) || sql[i] == '$' || static_cast<unsigned char>(sql[i]) >= 0x80))
                return false;
            if (large) {
                forms.literal(sql.substr(start, i - start), 'f');  // FCONST keeps its text
            } else {
                char digits[12];
                auto r = std::to_chars(digits, digits + sizeof digits, static_cast<int32_t>(value));
                std::string_view text(digits, static_cast<std::size_t>(r.ptr - digits));
                if (before_last == "float" && last == "(") forms.token(text);
                else forms.literal(text, 'i');
            }
            remember("number");
            continue;
        }
        if (c == '\'') {
            std::size_t start = i++;
            for (;;) {
                if (i >= n) return false;  // unterminated: the server reports it
                char ch = sql[i];
                if (ch == '\\' || static_cast<unsigned char>(ch) >= 0x80 || ch == '\0') return false;
                if (ch == '\'') {
                    if (i + 1 < n && sql[i + 1] == '\'') {
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                ++i;
            }
            // Another string after only white space may continue this one.
            std::size_t j = i;
            while (j < n && is_space(sql[j])) ++j;
            if (j < n && sql[j] == '\'') return false;
            forms.literal(sql.substr(start, i - start), 's');
            remember("string");
            continue;
        }
        if (c == '$') {
            std::size_t start = ++i;
            while (i < n && is_digit(sql[i])) ++i;
            std::size_t digits = i - start;
            if (digits == 0 || digits > 9) return false;  // dollar quotes, or a number atol would overflow
            if (i < n && (is_letter(sql[i]) || sql[i] == '$' || sql[i] == '.' || static_cast<unsigned char>(sql[i]) >= 0x80))
                return false;
            int32_t value = 0;
            for (std::size_t k = start; k < i; ++k) value = value * 10 + (sql[k] - '0');
            char text[12];
            text[0] = '$';
            auto r = std::to_chars(text + 1, text + sizeof text, value);
            forms.token(std::string_view(text, static_cast<std::size_t>(r.ptr - text)));
            remember("param");
            continue;
        }
        if (is_op_char(c)) {
            std::size_t start = i;
            while (i < n && is_op_char(sql[i])) ++i;
            std::string_view op = sql.substr(start, i - start);
            if (op.size() == 1) {
                if (c != '=' && c != '<' && c != '>' && c != '+' && c != '-' && c != '*' && c != '/' && c != '%')
                    return false;
                forms.token(op);
            } else if (op == "<>" || op == "!=") {
                forms.token("<>");
            } else if (op == "<=" || op == ">=") {
                forms.token(op);
            } else {
                return false;  // comments, and operators whose reading has rules of its own
            }
            remember("op");
            continue;
        }
        switch (c) {
            case ',': case '(': case ')': case ';': case '[': case ']':
                forms.token(sql.substr(i, 1));
                remember(c == '(' ? "(" : "self");
                ++i;
                continue;
            case ':':
                if (i + 2 < n && sql[i + 1] == ':' && (sql[i + 2] == ':' || sql[i + 2] == '=')) return false;
                if (i + 1 >= n || sql[i + 1] != ':') return false;
                forms.token("::");
                remember("::");
                i += 2;
                continue;
            case '.':
                // Only a qualified name (a.b, a.*): by a digit it is a number, twice a range.
                if (last != "word" && last != "float") return false;
                if (i + 1 >= n || !(is_letter(sql[i + 1]) || sql[i + 1] == '*')) return false;
                forms.token(".");
                remember("self");
                ++i;
                continue;
            default:
                return false;  // quoted names, dollar quotes, other characters
        }
    }
    if (!forms.ok()) return false;
    forms.finish();
    out.ok = true;
    return true;
}

std::string numbered_shape(std::string_view shape) {
    std::string out;
    out.reserve(shape.size() + 8);
    int n = 0;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] != '\x01') {
            out += shape[i];
            continue;
        }
        out += '$';
        out += std::to_string(++n);
        ++i;  // the placeholder's kind
    }
    return out;
}

}  // namespace rproxy
