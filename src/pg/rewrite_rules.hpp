// pg_rproxy_rewrite_rules in a worker: the enabled rules, read and compiled with PostgreSQL's regex
// engine once per change of the table (the catalogs' change counter moves at its commit), then
// applied to statement texts without a transaction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rproxy::pg {

class RewriteRules {
public:
    RewriteRules();
    ~RewriteRules();
    RewriteRules(const RewriteRules&) = delete;
    RewriteRules& operator=(const RewriteRules&) = delete;

    // Loads the rules again when the table may have changed; whether any is enabled.
    bool any();
    // Applies, in position order, the rules for this upstream ("" = pg_rproxy.upstream, which
    // only the rules without an upstream reach); true when sql changed.
    bool apply(const std::string& upstream, std::string& sql);

private:
    struct Rule;
    void load();
    void clear();
    bool apply_one(Rule& rule, std::string& sql);

    std::vector<std::unique_ptr<Rule>> rules_;
    uint64_t generation_ = 0;  // the change counter the rules were read at; 0: never read
    std::chrono::steady_clock::time_point failed_at_;
    bool failed_ = false;
    // The subject as pg_wchar, and each character's byte offset in it, reused from one
    // statement to the next.
    std::vector<unsigned int> wide_;
    std::vector<long> offsets_;
    std::string out_;
};

}  // namespace rproxy::pg
