// Per-worker memo from exact statement text to what the parser learned about it, so a repeated
// statement (a cache hit above all) never runs raw_parser again. Bounded in entries and in bytes of
// statement text (a client may send statements up to pg_rproxy.max_message_size); cleared on reload.
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
    explicit StatementMemo(std::size_t capacity = 4096, std::size_t max_bytes = 8 * 1024 * 1024)
        : capacity_(capacity), max_bytes_(max_bytes) {}

    std::shared_ptr<const ParsedQuery> find(const std::string& sql) const {
        auto it = memo_.find(sql);
        return it == memo_.end() ? nullptr : it->second;
    }
    void remember(const std::string& sql, std::shared_ptr<const ParsedQuery> parsed) {
        if (sql.size() > max_bytes_ / 16) return;  // a huge statement is parsed again rather than kept
        if (memo_.size() >= capacity_ || bytes_ + sql.size() > max_bytes_) clear();  // hot statements come back at once
        if (memo_.emplace(sql, std::move(parsed)).second) bytes_ += sql.size();
    }
    void clear() {
        memo_.clear();
        bytes_ = 0;
        verdicts_.clear();
    }
    std::size_t bytes() const { return bytes_; }

    // The firewall's verdict on a parsed statement for one upstream (a verdict depends on that
    // upstream's functions; upstream is its pool, which lives as long as the worker). It holds
    // until the next reload (firewall settings, built-ins and the upstream's functions are only
    // re-read then, and clear() is called). The parsed statement is kept alive with it, so its
    // address cannot be reused by another statement while the entry exists.
    std::shared_ptr<const Verdict> verdict(const ParsedQuery* parsed, const void* upstream) const {
        auto it = verdicts_.find(VerdictKey{parsed, upstream});
        return it == verdicts_.end() ? nullptr : it->second.second;
    }
    // Kept only while the memo holds this very parse of sql (verdicts keep their parse alive, and
    // are cleared with the memo): a statement too large for the memo leaves nothing behind.
    void remember_verdict(const std::string& sql, std::shared_ptr<const ParsedQuery> parsed, const void* upstream,
                          std::shared_ptr<const Verdict> v) {
        if (find(sql) != parsed) return;
        if (verdicts_.size() >= capacity_) verdicts_.clear();
        VerdictKey key{parsed.get(), upstream};
        verdicts_.emplace(key, std::make_pair(std::move(parsed), std::move(v)));
    }

private:
    std::size_t capacity_;
    std::size_t max_bytes_;
    std::size_t bytes_ = 0;  // statement text held by memo_
    std::unordered_map<std::string, std::shared_ptr<const ParsedQuery>> memo_;
    struct VerdictKey {
        const ParsedQuery* parsed;
        const void* upstream;
        bool operator==(const VerdictKey& o) const { return parsed == o.parsed && upstream == o.upstream; }
    };
    struct VerdictKeyHash {
        std::size_t operator()(const VerdictKey& k) const {
            return std::hash<const void*>()(k.parsed) * 31 + std::hash<const void*>()(k.upstream);
        }
    };
    std::unordered_map<VerdictKey, std::pair<std::shared_ptr<const ParsedQuery>, std::shared_ptr<const Verdict>>,
                       VerdictKeyHash>
        verdicts_;
};

}  // namespace rproxy
