// Stage "writes", on read-write upstreams, between acquire and forward: what a statement's writes
// reach is looked up and joins the client's transaction until it commits (WriteTracker). A name
// not known yet counts as reaching everything, and is learnt from the upstream's catalog on the
// client's connection after the exchange, once it is between transactions.
#include <algorithm>

#include "core/relation_generations.hpp"
#include "proxy/statement_pipeline.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {
const std::string& search_path_of(const SessionSettings& settings) {
    static const std::string none;
    const std::string* v = settings.get("search_path");
    return v ? *v : none;
}
}  // namespace

WriteTracker& StatementPipeline::writes() {
    if (!writes_) writes_ = std::make_unique<WriteTracker>(worker_.cache());
    return *writes_;
}

std::vector<uint32_t> StatementPipeline::read_generation_buckets(const ParsedQuery& parsed) {
    return read_buckets(upstream().data_identity(), parsed.relations);
}

asio::awaitable<void> StatementPipeline::learn_unknown_reach(const ConnectionPtr& conn) {
    if (!writes_ || writes_->unknown_reach.empty()) co_return;
    std::vector<std::string> names = std::move(writes_->unknown_reach);
    writes_->unknown_reach.clear();
    // Only between transactions: inside one the catalog would be read with the client's snapshot
    // (under REPEATABLE READ, without what was created since), and an error would abort it.
    if (tx_status_ != 'I' || conn->broken() || conn->transaction_status() != 'I') co_return;
    // A failure leaves the names unknown: their next writes count as reaching anything again.
    uint64_t schema = worker_.cache().generation_sum({schema_bucket(upstream().data_identity())});
    co_await upstream().relations().resolve(*conn, names, search_path_of(settings_), schema);
}

void StatementPipeline::start_writes(const ParsedQuery& parsed, const Verdict& verdict, char status_before) {
    if (!verdict.writes) {
        begin_write_exchange(false);
        return;
    }
    note_writes(verdict);
    bool block = std::any_of(parsed.statements.begin(), parsed.statements.end(),
                             [](const StatementFacts& st) { return st.transaction_control; });
    begin_write_exchange(status_before == 'I' && !block);
}

void StatementPipeline::note_writes(const Verdict& verdict) {
    if (!verdict.writes) return;
    const std::string& data = upstream().data_identity();
    std::vector<uint32_t> buckets;
    bool everything = verdict.writes_unseen;
    uint64_t schema = worker_.cache().generation_sum({schema_bucket(data)});
    for (const auto& name : verdict.written) {
        const WriteReach* reach = upstream().relations().lookup(name, search_path_of(settings_), schema);
        if (!reach) {
            everything = true;
            writes().unknown_reach.push_back(name);
            continue;
        }
        everything = everything || reach->unseen;
        for (const auto& r : reach->relations) add_bucket(buckets, relation_bucket(data, r));
        add_bucket(buckets, relation_bucket(data, name));
    }
    // What the text does not show may reach any relation of the upstream, and change what the
    // proxy learnt about them.
    if (everything) {
        add_bucket(buckets, upstream_bucket(data));
        add_bucket(buckets, schema_bucket(data));
    }
    if (verdict.changes_definitions) add_bucket(buckets, schema_bucket(data));
    // A rolled-back change of definitions may have been seen by a reach learnt in its transaction.
    if (!buckets.empty()) writes().add(buckets, verdict.changes_definitions || everything ? schema_bucket(data) : kNoBucket);
}

}  // namespace rproxy
