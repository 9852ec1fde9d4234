// The simple query protocol through the statement pipeline: judged, looked up in the cache, and
// otherwise forwarded as it is on the client's connection or a pooled one, its answers relayed
// until ReadyForQuery. A read that lost its connection before anything reached the client is
// retried once on a fresh one.
#include <algorithm>

#include "protocol/backend_messages.hpp"
#include "protocol/frontend_encode.hpp"
#include "proxy/statement_pipeline.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

asio::awaitable<void> StatementPipeline::handle_query(const std::string& received) {
    // intercept -> decode (serve) -> judge. From here on the statement is what intercept made of it.
    // The text lives in a member, not in this frame: Asio recycles frames of at most 1,020 bytes.
    query_text_ = intercept_query(received);
    std::shared_ptr<const ParsedQuery> parsed = query_text_ ? parse(*query_text_) : nullptr;
    if (parsed) observe_query(*query_text_, parsed);
    if (!parsed || answer_locally(*parsed)) {
        observe_done();
        if (!io_.write_now()) co_await io_.flush();
        co_return;
    }
    if (deallocate_locally(*parsed, out_)) {
        protocol::append_ready_for_query(out_, tx_status_);
        observe_done();
        if (!io_.write_now()) co_await io_.flush();
        co_return;
    }
    if (batch_open()) {
        co_await close_open_batch();
        if (io_.gone() || discard_until_sync_) co_return;  // an error in that batch: skipped up to Sync
    }
    ConnectionPtr conn = pinned_;
    std::optional<ErrorFields> failure;
    // Judged without a coroutine unless the upstream must be asked about a function.
    std::shared_ptr<const Verdict> judged = known_verdict(parsed);
    if (judged) check_judgement(*judged, *parsed, failure);
    else {
        Verdict slow = co_await judge(*parsed, conn, failure);
        judged = std::make_shared<const Verdict>(std::move(slow));
    }
    const Verdict& verdict = *judged;
    if (failure) {
        if (conn && conn != pinned_) upstream().release(conn);
        observe_refusal(*query_text_, parsed, verdict, *failure, StatementProtocol::Simple, sent_query());
        reject(*failure);
        if (!io_.write_now()) co_await io_.flush();
        co_return;
    }
    count_statement();

    // cache probe: a hit is a hash lookup and a copy into the output buffer.
    int ttl = 0;
    std::optional<CacheKey> key = cache_key_for(*query_text_, *parsed, verdict, &ttl, "");
    std::unique_ptr<Fill> fill;
    ProbeResult probe_result = ProbeResult::Bypass;
    if (key) {
        // A hit needs no coroutine; only waiting for another client's fill of the same entry does.
        std::optional<uint64_t> id;
        probe_result = probe_cache_now(*key, out_, &id);
        if (probe_result == ProbeResult::Wait || (probe_result == ProbeResult::Claimed && l2_on()))
            probe_result = co_await probe_further(*key, out_, probe_result, id, fill, ttl, *query_text_, parsed);
        else if (id) fill = make_fill(*key, *id, ttl, *query_text_, parsed);
    }
    observe_cache(key.has_value(), probe_result);
    if (probe_result == ProbeResult::Hit) {
        if (conn && conn != pinned_) upstream().release(conn);
        protocol::append_ready_for_query(out_, tx_status_);
        observe_done();
        if (!io_.write_now()) co_await io_.flush();
        co_return;
    }

    const std::size_t out_start = out_.size();
    for (int attempt = 0; attempt < 2; ++attempt) {
        // acquire
        ConnectionPtr ready = acquire_now(conn);
        if (ready) conn = std::move(ready);
        else conn = co_await acquire(conn, failure);
        if (!conn) {
            abandon_expected();
            protocol::append_error(out_, *failure);
            observe_error(*failure);
            break;
        }
        char status_before = tx_status_;
        // writes
        // A name written for the first time counts as reaching anything; what it reaches is learnt
        // after the exchange (one more await here would make this frame too large for Asio to
        // recycle: a malloc per statement, cache hits included).
        start_writes(*parsed, verdict, status_before);
        // forward
        flushed_since_start_ = false;
        batch_failed_ = false;
        protocol::append_query(conn->output(), *query_text_);
        Expected e;
        e.kind = Expected::Kind::Query;
        if (fill) {
            fill->capture.bytes.clear();
            fill->capture.rows = 0;
            fill->complete = false;
        }
        e.fill = std::move(fill);
        expected_.push_back(std::move(e));
        // relay and capture
        Outcome outcome = Outcome::Lost;
        // Spelled out, as in the first form that ran under GCC 12: see ServerConnection::send().
        bool sent = conn->send_now();
        if (!sent) sent = co_await conn->send();
        if (sent) outcome = co_await relay_all(conn, true, false);
        // finish
        if (outcome == Outcome::Ready) {
            tx_status_ = conn->transaction_status();
            if (writes_ && !writes_->unknown_reach.empty()) co_await learn_unknown_reach(conn);
            bool pins = false;
            finish_statement(*parsed, conn, !batch_failed_, status_before, verdict.session_state, pins);
            finish_fills(true);
            keep_or_release(conn, pins);
            if (tx_status_ == 'I' && ext_) ext_->portals_.clear();  // a COMMIT ends the portals too
            break;
        }
        // A write cut off may have committed if it ran outside a transaction block.
        if (writes_) writes_->lost();
        if (outcome == Outcome::ClientGone) {
            // Stop the statement upstream, then drop the connection: a half-read result cannot be
            // handed to the next client.
            cancel_upstream(conn);
            conn->mark_broken();
            abandon_expected();
            keep_or_release(conn, false);
            observe_lost();
            observe_done();
            co_return;
        }
        // Lost: take the fill back for another try.
        for (auto& x : expected_)
            if (x.fill) fill = std::move(x.fill);
        for (auto& x : fills_)
            if (x) fill = std::move(x);
        fills_.clear();
        abandon_expected();
        bool was_pinned = conn == pinned_;
        keep_or_release(conn, false);
        conn.reset();
        // Nothing reached the client yet and reads are repeatable: once more on a fresh
        // connection, unless the client's transaction or session state lived on the lost one.
        // A write is never sent twice: it may have committed before the connection went.
        if (attempt == 0 && !was_pinned && !flushed_since_start_ && !verdict.writes) {
            out_.resize(out_start);
            observe_retry();
            continue;
        }
        append_connection_lost();
        break;
    }
    if (fill) {
        fill->complete = false;
        finish_fill(*fill);
    }
    protocol::append_ready_for_query(out_, tx_status_);
    observe_done();
    if (!io_.write_now()) co_await io_.flush();
}

}  // namespace rproxy
