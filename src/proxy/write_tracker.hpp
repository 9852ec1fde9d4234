// The writes of one client's transaction on a read-write upstream, and when they commit: the
// generation counters of what they reach (core/relation_generations) are bumped once the commit
// is confirmed, before the client is told, so that no client reads a cached result older than a
// write it saw commit. A transaction rolled back bumps nothing.
//
// When the commit is confirmed: at the CommandComplete of COMMIT; in the simple protocol, at the
// CommandComplete of a statement run outside a transaction block (the server commits before it
// sends that); otherwise at ReadyForQuery outside a transaction, unless the exchange ended in
// ROLLBACK or failed. A lost connection counts as a commit. Counters may be bumped more often
// than needed, never less.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/worker_host.hpp"

namespace rproxy {

constexpr uint32_t kNoBucket = UINT32_MAX;

class WriteTracker {
public:
    explicit WriteTracker(ResultCacheStore& counters) : counters_(counters) {}

    // A statement that writes was sent: buckets are the counters of what it reaches;
    // on_rollback, a counter bumped even if it rolls back (kNoBucket: none).
    void add(const std::vector<uint32_t>& buckets, uint32_t on_rollback);
    bool pending() const { return !pending_.empty(); }

    // An exchange with the upstream starts; confirms_at_complete: a simple Query outside a
    // transaction block, whose CommandComplete comes after the commit.
    void begin_exchange(bool confirms_at_complete);
    void command_complete(std::string_view tag);
    // ReadyForQuery: status after it, and whether the exchange had an error.
    void ready(char status, bool failed);
    // The connection was lost, or the client left: a commit may have been under way.
    void lost();

    // Relations written whose reach was not known (counted as reaching anything), to be learnt
    // once the connection is between transactions.
    std::vector<std::string> unknown_reach;

private:
    void commit();
    void roll_back();
    ResultCacheStore& counters_;
    std::vector<uint32_t> pending_;
    std::vector<uint32_t> on_rollback_;
    bool confirms_at_complete_ = false;
    enum class End : uint8_t { None, Commit, Rollback } last_end_ = End::None;
};

}  // namespace rproxy
