#include "proxy/write_tracker.hpp"

#include "core/relation_generations.hpp"

namespace rproxy {

void WriteTracker::add(const std::vector<uint32_t>& buckets, uint32_t on_rollback) {
    last_end_ = End::None;
    for (uint32_t b : buckets) add_bucket(pending_, b);
    if (on_rollback != kNoBucket) add_bucket(on_rollback_, on_rollback);
}

void WriteTracker::begin_exchange(bool confirms_at_complete) {
    confirms_at_complete_ = confirms_at_complete;
    last_end_ = End::None;
}

// Every write of an exchange was added before its first answer: the writes of statements after a
// COMMIT are pending too, so a COMMIT bumps without forgetting them (a bump too many, never one
// too few), and a statement completing after a ROLLBACK means the exchange went on writing.
void WriteTracker::command_complete(std::string_view tag) {
    if (tag.substr(0, 6) == "COMMIT") {  // COMMIT, COMMIT AND CHAIN; COMMIT PREPARED bumps its own
        last_end_ = End::Commit;
        counters_.bump_generations(pending_);
        return;
    }
    if (tag == "ROLLBACK") {  // ROLLBACK, or COMMIT of a failed transaction, or ROLLBACK TO SAVEPOINT
        last_end_ = End::Rollback;
        return;
    }
    last_end_ = End::None;
    if (confirms_at_complete_) counters_.bump_generations(pending_);
}

void WriteTracker::ready(char status, bool failed) {
    if (status != 'I' || pending_.empty()) return;
    bool rolled_back = last_end_ == End::Rollback || (last_end_ == End::None && failed);
    if (rolled_back) roll_back();
    else commit();
}

void WriteTracker::lost() {
    // Whether a commit was on its way when the connection went cannot be known: it counts.
    commit();
}

void WriteTracker::commit() {
    if (!pending_.empty()) counters_.bump_generations(pending_);
    pending_.clear();
    on_rollback_.clear();
}

void WriteTracker::roll_back() {
    if (!on_rollback_.empty()) counters_.bump_generations(on_rollback_);
    pending_.clear();
    on_rollback_.clear();
}

}  // namespace rproxy
