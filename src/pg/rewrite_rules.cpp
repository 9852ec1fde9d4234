#include "pg/rewrite_rules.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "core/regex_rewrite.hpp"
#include "pg/auth_generation.hpp"
#include "pg/catalog_query.hpp"
#include "pg/pg_guard.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "regex/regex.h"
}

namespace rproxy::pg {

static_assert(sizeof(pg_wchar) == sizeof(unsigned int));

struct RewriteRules::Rule {
    int position = 0;
    std::optional<std::string> upstream;
    std::string replacement;
    bool glob = false;
    bool compiled = false;
    regex_t re;
    ~Rule() {
        if (compiled) pg_regfree(&re);
    }
};

namespace {

int regex_cflags(const RegexOptions& o) {
    int cflags = 0;
    switch (o.syntax) {
        case RegexOptions::Syntax::Advanced: cflags = REG_ADVANCED; break;
        case RegexOptions::Syntax::Extended: cflags = REG_EXTENDED; break;
        case RegexOptions::Syntax::Basic: cflags = 0; break;
        case RegexOptions::Syntax::Quote: cflags = REG_QUOTE; break;
    }
    if (o.icase) cflags |= REG_ICASE;
    if (o.nlstop) cflags |= REG_NLSTOP;
    if (o.nlanch) cflags |= REG_NLANCH;
    if (o.expanded) cflags |= REG_EXPANDED;
    return cflags;
}

// text as pg_wchar in wide (its length returned), and where each character starts in text
// (offsets[i], offsets[n] the end of the last one), walked as the converter walks the bytes.
int to_wide(const std::string& text, std::vector<unsigned int>& wide, std::vector<long>* offsets) {
    wide.resize(text.size() + 1);
    int n = 0;
    pg_call([&] { n = pg_mb2wchar_with_len(text.data(), reinterpret_cast<pg_wchar*>(wide.data()), static_cast<int>(text.size())); });
    if (!offsets) return n;
    offsets->resize(static_cast<std::size_t>(n) + 1);
    long at = 0;
    const long size = static_cast<long>(text.size());
    if (pg_database_encoding_max_length() == 1) {
        for (int i = 0; i <= n; ++i) (*offsets)[i] = i;
        return n;
    }
    for (int i = 0; i < n; ++i) {
        (*offsets)[i] = at;
        long len = pg_mblen(text.data() + at);
        at = std::min(size, at + std::max(1L, len));
    }
    (*offsets)[n] = at;
    return n;
}

}  // namespace

RewriteRules::RewriteRules() = default;
RewriteRules::~RewriteRules() = default;

void RewriteRules::clear() { rules_.clear(); }

bool RewriteRules::any() {
    uint64_t generation = auth_generation();
    if (generation != generation_) {
        auto now = std::chrono::steady_clock::now();
        // An unreadable table is tried again a second later, not at every statement.
        if (!failed_ || now - failed_at_ >= std::chrono::seconds(1)) {
            load();
            if (failed_) failed_at_ = now;
            else generation_ = generation;
        }
    }
    return !rules_.empty();
}

void RewriteRules::load() {
    CatalogResult where = run_catalog_queries({{"SELECT quote_ident(n.nspname) FROM pg_extension e "
                                                "JOIN pg_namespace n ON n.oid = e.extnamespace "
                                                "WHERE e.extname = 'pg_rproxy' AND to_regclass(quote_ident(n.nspname) "
                                                "|| '.pg_rproxy_rewrite_rules') IS NOT NULL",
                                                {}}});
    std::vector<CatalogRow> rows;
    if (where.error.empty() && !where.results[0].empty() && where.results[0][0][0]) {
        CatalogResult r = run_catalog_queries(
            {{"SELECT position, upstream, pattern, replacement, flags FROM " + *where.results[0][0][0] +
                  ".pg_rproxy_rewrite_rules WHERE enabled ORDER BY position",
              {}}});
        where.error = r.error;
        if (r.error.empty()) rows = std::move(r.results[0]);
    }
    failed_ = !where.error.empty();
    if (failed_) {
        std::string message = "pg_rproxy: could not read pg_rproxy_rewrite_rules (the rules loaded before stay): " + where.error;
        pg_call([&] { ereport(WARNING, (errmsg_internal("%s", message.c_str()))); });
        return;
    }
    clear();
    MemoryContext ctx = CurrentMemoryContext;
    for (const auto& row : rows) {
        auto rule = std::make_unique<Rule>();
        rule->position = std::atoi(row[0].value_or("0").c_str());
        rule->upstream = row[1];
        rule->replacement = row[3].value_or("");
        const std::string pattern = row[2].value_or("");
        char bad = 0;
        std::optional<RegexOptions> options = parse_regex_flags(row[4].value_or(""), &bad);
        std::string problem;
        if (!options) {
            problem = std::string("invalid regular expression option: \"") + bad + "\"";
        } else {
            rule->glob = options->glob;
            int n = to_wide(pattern, wide_, nullptr);
            int rc = REG_OKAY;
            char message[256] = {0};
            int cflags = regex_cflags(*options);
            // Compiled in the worker's long-lived memory: kept until the table changes.
            pg_call([&] {
                MemoryContextSwitchTo(TopMemoryContext);
                rc = pg_regcomp(&rule->re, reinterpret_cast<pg_wchar*>(wide_.data()), static_cast<size_t>(n), cflags,
                                DEFAULT_COLLATION_OID);
                if (rc != REG_OKAY) pg_regerror(rc, &rule->re, message, sizeof message);
                MemoryContextSwitchTo(ctx);
            });
            MemoryContextSwitchTo(ctx);
            if (rc == REG_OKAY) rule->compiled = true;
            else problem = std::string("invalid regular expression: ") + message;
        }
        if (!problem.empty()) {
            // The table's trigger refuses such rules; one written before it existed is skipped.
            std::string m = "pg_rproxy: rewrite rule " + std::to_string(rule->position) + " skipped: " + problem;
            pg_call([&] { ereport(WARNING, (errmsg_internal("%s", m.c_str()))); });
            continue;
        }
        rules_.push_back(std::move(rule));
    }
}

bool RewriteRules::apply(const std::string& upstream, std::string& sql) {
    bool changed = false;
    for (auto& rule : rules_)
        if (!rule->upstream || *rule->upstream == upstream) changed |= apply_one(*rule, sql);
    return changed;
}

// regexp_replace(sql, pattern, replacement, flags), as PostgreSQL's replace_text_regexp runs it.
bool RewriteRules::apply_one(Rule& rule, std::string& sql) {
    const int n = to_wide(sql, wide_, &offsets_);
    const auto* wide = reinterpret_cast<const pg_wchar*>(wide_.data());
    regmatch_t pm[kRegexGroups];
    std::size_t search_start = 0;
    long copied = 0;  // bytes of sql already in out_
    bool matched = false;
    while (search_start <= static_cast<std::size_t>(n)) {
        int rc = REG_OKAY;
        pg_call([&] {
            rc = pg_regexec(&rule.re, wide, static_cast<size_t>(n), search_start, nullptr, kRegexGroups, pm, 0);
        });
        if (rc == REG_NOMATCH) break;
        if (rc != REG_OKAY) {
            char message[256] = {0};
            pg_call([&] { pg_regerror(rc, &rule.re, message, sizeof message); });
            throw std::runtime_error(std::string("rewrite rule ") + std::to_string(rule.position) +
                                     ": regular expression failed: " + message);
        }
        if (!matched) {
            out_.clear();
            matched = true;
        }
        RegexSpan groups[kRegexGroups];
        for (int g = 0; g < kRegexGroups; ++g)
            if (pm[g].rm_so >= 0 && pm[g].rm_eo >= pm[g].rm_so && pm[g].rm_eo <= n)
                groups[g] = {offsets_[pm[g].rm_so], offsets_[pm[g].rm_eo]};
        out_.append(sql, static_cast<std::size_t>(copied), static_cast<std::size_t>(groups[0].start - copied));
        append_substitution(out_, rule.replacement, sql, groups);
        copied = groups[0].end;
        // The next search starts after the match; one character on after an empty one.
        search_start = static_cast<std::size_t>(pm[0].rm_eo);
        if (pm[0].rm_so == pm[0].rm_eo) ++search_start;
        if (!rule.glob) break;
    }
    if (!matched) return false;
    out_.append(sql, static_cast<std::size_t>(copied), std::string::npos);
    sql.swap(out_);
    return true;
}

}  // namespace rproxy::pg
