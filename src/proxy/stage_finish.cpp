// Stage "finish": after the upstream's ReadyForQuery, the client's own state follows what ran
// (settings, LISTEN, DEALLOCATE ALL, pinning), and the connection goes back to the pool or stays
// with the client.
#include "proxy/statement_pipeline.hpp"
#include <algorithm>
#include "core/reported_parameters.hpp"
#include "protocol/backend_messages.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

bool StatementPipeline::track_settings(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded,
                                   char status_before) {
    bool changes = false, transactional = status_before != 'I';
    for (const auto& st : parsed.statements) {
        changes = changes || !st.setting_changes.empty() || st.reset_all;
        transactional = transactional || st.transaction_control;
    }
    if (!changes) return false;
    if (transactional) return true;  // a transaction may still roll them back: keep the connection
    if (!succeeded) return false;    // the implicit transaction rolled every SET of the string back
    // Two views: what the client now expects (RESET returns to its startup values), and what the
    // connection now carries (RESET returns to the connection's own defaults). Where they differ,
    // the next statement's sync puts the client's values back.
    SessionSettings carried = conn ? conn->applied_settings() : SessionSettings();
    for (const auto& st : parsed.statements) {
        if (st.reset_all) {
            settings_ = startup_settings_;
            carried = SessionSettings();
        }
        for (const auto& [name, value] : st.setting_changes) {
            if (value) {
                settings_.set(name, *value);
                carried.set(name, *value);
            } else {
                if (const std::string* initial = startup_settings_.get(name)) settings_.set(name, *initial);
                else settings_.erase(name);
                carried.erase(name);
            }
        }
    }
    if (conn) conn->applied_settings() = carried;
    // The server reported the changed GUC_REPORT settings to libpq: pass on what this client
    // has not been told yet. After a reset the connection fell back to its own defaults, not to
    // the client's startup values: what a connection carrying the client's settings reported is
    // known when they are the startup ones.
    const Upstream::ReportedParameters* known = upstream().reported_parameters(settings_);
    bool reset = std::any_of(parsed.statements.begin(), parsed.statements.end(),
                             [](const StatementFacts& st) { return st.reset_all; });
    for (const char* name : kReportedParameters) {
        const std::string* reported = conn ? conn->parameter(name) : nullptr;
        const char* v = reported ? reported->c_str() : nullptr;
        if (reset && known) {
            for (const auto& [k, value] : *known)
                if (k == name) v = value.c_str();
        }
        if (!v || told_.told(name, v)) continue;
        told_.tell(name, v);
        protocol::append_parameter_status(out_, name, v);
    }
    return false;
}

// DISCARD ALL / DEALLOCATE ALL ran upstream: the connection lost every prepared statement, and so
// did the client.
void StatementPipeline::after_deallocate_all(const ParsedQuery& parsed, const ConnectionPtr& conn) {
    for (const auto& st : parsed.statements) {
        if (!st.deallocate_all) continue;
        if (conn) conn->forget_all_prepared();
        if (ext_) ext_->statements_.clear();
        prepared_.clear();
    }
}

void StatementPipeline::after_listen(const ParsedQuery& parsed, const ConnectionPtr& conn) {
    relay_notifications(conn);  // those the connection received outside the statement
    for (const auto& st : parsed.statements)
        if (st.kind == "LISTEN") listening_ = true;
}

void StatementPipeline::keep_or_release(ConnectionPtr conn, bool session_state) {
    if (!conn) return;
    session_dirty_ = session_dirty_ || session_state;
    if (session_dirty_ && dirty_reason_ == PinReason::None) dirty_reason_ = PinReason::Setting;
    bool alive = !conn->broken();
    // Session pooling: the client keeps its first connection until it leaves.
    if (alive && (session_dirty_ || conn->transaction_status() != 'I' || upstream_->pool_mode() == PoolMode::Session)) {
        show_pin(session_dirty_ ? dirty_reason_
                 : conn->transaction_status() != 'I' ? PinReason::Transaction
                                                     : PinReason::SessionPoolMode);
        pinned_ = std::move(conn);
        return;
    }
    if (conn == pinned_) pinned_.reset();
    if (!alive) {
        // The session's state went with the connection; the next statement starts clean.
        session_dirty_ = false;
        dirty_reason_ = PinReason::None;
        prepared_.clear();
        tx_status_ = 'I';
    }
    show_pin(PinReason::None);
    upstream().release(std::move(conn));
}

void StatementPipeline::show_pin(PinReason r) {
    if (r == pin_shown_) return;
    pin_shown_ = r;
    io_.show_pinned(pin_reason_name(r));
}

void StatementPipeline::release_pinned() {
    abandon_expected();  // fills this client claimed are given up at once, not left to time out
    if (writes_) writes_->lost();  // an open transaction is rolled back: a bump too many at most
    if (ext_ && ext_->batch_conn_) {
        // Left mid-batch: what was sent is not awaited, and the connection is not pooled again.
        ConnectionPtr batch = std::move(ext_->batch_conn_);
        batch->mark_broken();
        if (batch != pinned_) upstream().release(std::move(batch));
    }
    if (!pinned_) return;
    if (session_dirty_) pinned_->mark_broken();  // carries this client's settings: never reused
    upstream().release(std::move(pinned_));
}

// One statement ran (its ReadyForQuery came): the client's state follows it.
void StatementPipeline::finish_statement(const ParsedQuery& parsed, const ConnectionPtr& conn, bool succeeded,
                                     char status_before, bool session_state, bool& pins) {
    after_deallocate_all(parsed, conn);
    after_listen(parsed, conn);
    bool in_transaction = track_settings(parsed, conn, succeeded, status_before);
    if (dirty_reason_ == PinReason::None) {
        if (session_state)
            for (const auto& st : parsed.statements)
                if (st.session_state && dirty_reason_ == PinReason::None) dirty_reason_ = pin_reason_of(st.state_reason);
        if (session_state && dirty_reason_ == PinReason::None) dirty_reason_ = PinReason::Opaque;  // the verdict's, not a statement's
        if (in_transaction && dirty_reason_ == PinReason::None) dirty_reason_ = PinReason::Setting;
    }
    pins = in_transaction || pins || session_state;
}

// The fills of results that ran to their end are stored once the transaction is known to be over
// (a result seen inside a transaction may never become visible to others); the rest are given up.
void StatementPipeline::finish_fills(bool complete) {
    for (auto& f : fills_) {
        f->complete = f->complete && complete;
        finish_fill(*f);
    }
    fills_.clear();
}

void StatementPipeline::abandon_expected() {
    for (auto& e : expected_) {
        if (e.fill) fills_.push_back(std::move(e.fill));
        if (e.observed) lost_observed_.push_back(std::move(e.observed));  // emitted unless the batch runs again
    }
    expected_.clear();
    finish_fills(false);
}

bool StatementPipeline::Extended::in_use() const {
    return !statements_.empty() || !portals_.empty() || batch_conn_ || held_portal_ || !batch_executed_.empty() ||
           !batch_log_.empty() || batch_lost_ || batch_unsafe_ || batch_writes_ || !batch_statements_.empty() || !batch_replaced_.empty();
}

void StatementPipeline::shed_idle_memory() {
    if (ext_ && !ext_->in_use()) ext_.reset();
    if (ext_ && ext_->batch_log_.empty()) std::string().swap(ext_->batch_log_);  // kept between batches, not while idle
    expected_.shrink_if_empty();
    if (fills_.empty()) std::vector<std::unique_ptr<Fill>>().swap(fills_);
    if (!intercepted_.empty()) std::string().swap(intercepted_);
    sent_text_.reset();
}

}  // namespace rproxy
