// Per-worker memo of what the parser learned, so that the grammar runs as rarely as possible:
//  - by exact statement text: a repeated statement (a cache hit above all) is not even scanned;
//  - by shape (the scanner's tokens with literals as placeholders): a statement that differs from
//    an earlier one only in its literals takes that one's facts, unless a fact was read from a
//    literal (ParsedQuery::literal_facts), and only the scanner runs;
//  - the firewall's verdict per facts and upstream.
// Each part is bounded in entries and in bytes of text (a client may send statements up to
// pg_rproxy.max_message_size) and starts over when full; everything is cleared on reload.
#pragma once
#include "core/pure_layer.hpp"

#include <array>
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

    std::shared_ptr<const ParsedQuery> find(const std::string& sql) const { return exact_.find(sql); }
    void remember(const std::string& sql, std::shared_ptr<const ParsedQuery> parsed) {
        exact_.remember(sql, std::move(parsed), capacity_, max_bytes_);
    }

    // The facts of an earlier statement of this shape, for a statement whose own normalized form
    // is normalized: a new ParsedQuery that shares their verdicts. nullptr when none is known.
    std::shared_ptr<const ParsedQuery> find_shape(const std::string& shape, std::string&& normalized) const {
        auto same = shapes_.find(shape);
        if (!same) return nullptr;
        auto parsed = std::make_shared<ParsedQuery>(*same);
        parsed->normalized = std::move(normalized);
        parsed->same_facts_as = std::move(same);
        return parsed;
    }
    // Whether sql was asked about before (a hash in a small table, so sometimes wrongly no): a text
    // that differs from others only in its literals is kept by exact text from its second time
    // on, so that a stream of ever-new literals does not churn the exact memo.
    bool seen_before(const std::string& sql) {
        std::size_t h = std::hash<std::string>()(sql);
        std::size_t& slot = seen_[h % seen_.size()];
        if (slot == h) return true;
        slot = h;
        return false;
    }

    // Only a parse whose facts hold for every string of its shape is kept.
    void remember_shape(const std::string& shape, const std::shared_ptr<const ParsedQuery>& parsed) {
        if (shape.empty() || parsed->literal_facts || parsed->error_sqlstate || parsed->same_facts_as) return;
        shapes_.remember(shape, parsed, capacity_, max_bytes_);
    }

    void clear() {
        seen_.fill(0);
        exact_.clear();
        shapes_.clear();
        verdicts_.clear();
        verdict_bytes_ = 0;
    }
    std::size_t bytes() const { return exact_.bytes + shapes_.bytes; }

    // The firewall's verdict on a statement's facts for one upstream (a verdict depends on that
    // upstream's functions; upstream is its Upstream::id, never reused). It holds
    // until the next reload (firewall settings, built-ins and the upstream's functions are only
    // re-read then, and clear() is called). Statements of one shape share the verdict of the
    // first one's facts, which the entry keeps alive, so their address cannot be reused by
    // other facts while the entry exists.
    std::shared_ptr<const Verdict> verdict(const ParsedQuery& parsed, uint64_t upstream) const {
        auto it = verdicts_.find(VerdictKey{parsed.facts_identity(), upstream});
        return it == verdicts_.end() ? nullptr : it->second.second;
    }
    void remember_verdict(const std::shared_ptr<const ParsedQuery>& parsed, uint64_t upstream,
                          std::shared_ptr<const Verdict> v) {
        std::shared_ptr<const ParsedQuery> facts = parsed->same_facts_as ? parsed->same_facts_as : parsed;
        std::size_t size = facts->normalized.size();
        if (size > max_bytes_ / 16) return;  // a huge statement is judged again rather than kept
        if (verdicts_.size() >= capacity_ || verdict_bytes_ + size > max_bytes_) {
            verdicts_.clear();
            verdict_bytes_ = 0;
        }
        VerdictKey key{facts.get(), upstream};
        if (verdicts_.emplace(key, std::make_pair(std::move(facts), std::move(v))).second) verdict_bytes_ += size;
    }

private:
    // Text -> parse, bounded; cleared whole when full, since hot statements come back at once.
    struct TextMap {
        std::unordered_map<std::string, std::shared_ptr<const ParsedQuery>> entries;
        std::size_t bytes = 0;
        std::shared_ptr<const ParsedQuery> find(const std::string& text) const {
            auto it = entries.find(text);
            return it == entries.end() ? nullptr : it->second;
        }
        void remember(const std::string& text, std::shared_ptr<const ParsedQuery> parsed, std::size_t capacity,
                      std::size_t max_bytes) {
            if (text.size() > max_bytes / 16) return;  // a huge statement is parsed again rather than kept
            if (entries.size() >= capacity || bytes + text.size() > max_bytes) clear();
            if (entries.emplace(text, std::move(parsed)).second) bytes += text.size();
        }
        void clear() {
            entries.clear();
            bytes = 0;
        }
    };

    std::size_t capacity_;
    std::size_t max_bytes_;
    TextMap exact_;
    TextMap shapes_;
    std::array<std::size_t, 4096> seen_{};
    struct VerdictKey {
        const ParsedQuery* facts;
        uint64_t upstream;
        bool operator==(const VerdictKey& o) const { return facts == o.facts && upstream == o.upstream; }
    };
    struct VerdictKeyHash {
        std::size_t operator()(const VerdictKey& k) const {
            return std::hash<const void*>()(k.facts) * 31 + std::hash<uint64_t>()(k.upstream);
        }
    };
    std::unordered_map<VerdictKey, std::pair<std::shared_ptr<const ParsedQuery>, std::shared_ptr<const Verdict>>,
                       VerdictKeyHash>
        verdicts_;
    std::size_t verdict_bytes_ = 0;  // normalized text of the facts verdicts_ keeps alive
};

}  // namespace rproxy
