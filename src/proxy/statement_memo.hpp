// Per-worker memo from exact statement text to what the parser learned about it, so a repeated
// statement (a cache hit above all) never runs raw_parser again. Bounded; cleared on reload.
#pragma once
#include "core/pure_layer.hpp"

#include <memory>
#include <string>
#include <unordered_map>

#include "core/statement_facts.hpp"

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
    void clear() { memo_.clear(); }

private:
    std::size_t capacity_;
    std::unordered_map<std::string, std::shared_ptr<const ParsedQuery>> memo_;
};

}  // namespace rproxy
