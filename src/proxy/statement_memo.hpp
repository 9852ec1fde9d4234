// Per-worker memo from exact statement text to what the parser learned about it, so a repeated
// statement (a cache hit above all) never runs raw_parser again. Bounded; cleared on reload.
#pragma once
#include "core/pure_layer.hpp"

#include <memory>
#include <string>
#include <unordered_map>

#include "core/statement_facts.hpp"
#include "core/verdict.hpp"

namespace rproxy {

class StatementMemo {
public:
    explicit StatementMemo(std::size_t capacity = 4096) : capacity_(capacity) {}

    std::shared_ptr<const ParsedQuery> find(const std::string& sql) const {
        auto it = memo_.find(sql);
        return it == memo_.end() ? nullptr : it->second;
    }
    void remember(const std::string& sql, std::shared_ptr<const ParsedQuery> parsed) {
        if (memo_.size() >= capacity_) memo_.clear();  // cheap bound; hot statements come back at once
        memo_.emplace(sql, std::move(parsed));
    }
    void clear() {
        memo_.clear();
        verdicts_.clear();
    }

    // The firewall's verdict on a parsed statement, when it needed nothing from the upstream. It
    // holds until the next reload (firewall settings, built-ins and the upstream's functions are
    // only re-read then, and clear() is called). The parsed statement is kept alive with it, so its
    // address cannot be reused by another statement while the entry exists.
    std::shared_ptr<const Verdict> verdict(const ParsedQuery* parsed) const {
        auto it = verdicts_.find(parsed);
        return it == verdicts_.end() ? nullptr : it->second.second;
    }
    void remember_verdict(std::shared_ptr<const ParsedQuery> parsed, std::shared_ptr<const Verdict> v) {
        if (verdicts_.size() >= capacity_) verdicts_.clear();
        const ParsedQuery* key = parsed.get();
        verdicts_.emplace(key, std::make_pair(std::move(parsed), std::move(v)));
    }

private:
    std::size_t capacity_;
    std::unordered_map<std::string, std::shared_ptr<const ParsedQuery>> memo_;
    std::unordered_map<const ParsedQuery*, std::pair<std::shared_ptr<const ParsedQuery>, std::shared_ptr<const Verdict>>>
        verdicts_;
};

}  // namespace rproxy
