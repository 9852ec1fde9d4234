// Stage "observe": what each statement did (its text, verdict, cache result, rows, final SQLSTATE
// and duration), collected as it passes the other stages and handed to Worker::statement_done()
// once the client has its whole answer.
#include "proxy/statement_pipeline.hpp"

#include <cstring>

#include "protocol/backend_messages.hpp"
#include "proxy/worker.hpp"

namespace rproxy {

namespace {

// The row count a command tag ends with (SELECT 3, INSERT 0 3, UPDATE 3, COPY 3...); 0 for tags
// without one (CREATE TABLE, SET).
uint64_t tag_rows(std::string_view tag) {
    if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
    std::size_t space = tag.rfind(' ');
    if (space == std::string_view::npos) return 0;
    uint64_t n = 0;
    for (char c : tag.substr(space + 1)) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    return n;
}

// The 'C' field of an ErrorResponse body, never read past its end.
void copy_sqlstate(std::string_view body, char* out) {
    std::size_t i = 0;
    while (i < body.size() && body[i] != '\0') {
        char code = body[i++];
        std::size_t end = body.find('\0', i);
        if (end == std::string_view::npos) return;
        if (code == 'C' && end - i == 5) {
            memcpy(out, body.data() + i, 5);
            out[5] = '\0';
            return;
        }
        i = end + 1;
    }
}

void set_sqlstate(char* out, std::string_view code) {
    if (code.size() != 5) return;
    memcpy(out, code.data(), 5);
    out[5] = '\0';
}

}  // namespace

void StatementPipeline::observe_query(const std::string& sql, const std::shared_ptr<const ParsedQuery>& parsed) {
    observing_ = worker_.observing();
    if (!observing_) return;
    if (!observed_) observed_ = worker_.take_observed();
    Observed& o = *observed_;
    o.started = std::chrono::steady_clock::now();
    o.sql = &sql;
    o.sent = sent_query();
    o.keeps_sql.reset();
    o.parsed = parsed;
    o.protocol = StatementProtocol::Simple;
    o.cache = CacheOutcome::Uncacheable;
    o.uncacheable = "not_a_read";
    o.rows = 0;
    memcpy(o.sqlstate, "00000", 6);
}

void StatementPipeline::observe_refusal(const std::string& sql, const std::shared_ptr<const ParsedQuery>& parsed,
                                        const Verdict& verdict, const ErrorFields& failure, StatementProtocol protocol,
                                        const std::string* sent) {
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    if (protocol == StatementProtocol::Simple && observing_) {
        observing_ = false;  // ends here
        started = observed_->started;
        observed_->parsed.reset();
        worker_.give_observed(std::move(observed_));
    } else if (!worker_.observing()) {
        return;  // (a simple Query refused before it was parsed is observed from here)
    }
    Observed o;
    o.started = started;
    o.sql = &sql;
    o.sent = sent;
    o.parsed = parsed;
    o.protocol = protocol;
    o.uncacheable = "refused";
    const std::string* code = failure.find('C');
    if (code) set_sqlstate(o.sqlstate, *code);
    // A judgement that could not be made (the upstream unreachable) is an error, not a refusal.
    bool refused = !verdict.allowed || !code || code->compare(0, 2, "08") != 0;
    const std::string* message = failure.find('M');
    emit_observed(o, refused, verdict.allowed ? RejectReason::None : verdict.reason, code ? *code : std::string(),
                  message ? *message : std::string());
}

void StatementPipeline::observe_cache(bool keyed, ProbeResult result) {
    if (!observing_) return;
    Observed& o = *observed_;
    if (!keyed) {
        o.cache = CacheOutcome::Uncacheable;
        o.uncacheable = uncacheable_why_;
    } else if (result == ProbeResult::Hit) {
        o.cache = CacheOutcome::Hit;
        o.rows = hit_rows_;
    } else {
        o.cache = CacheOutcome::Miss;
    }
}

void StatementPipeline::observe_error(const ErrorFields& e) {
    if (!observing_) return;
    if (const std::string* code = e.find('C')) set_sqlstate(observed_->sqlstate, *code);
}

void StatementPipeline::observe_lost() {
    if (observing_) set_sqlstate(observed_->sqlstate, "08006");
}

void StatementPipeline::append_connection_lost() {
    protocol::append_error(out_, ErrorFields::make("ERROR", "08006", "upstream connection lost"));
    observe_lost();
}

void StatementPipeline::observe_done() {
    if (!observing_) return;
    observing_ = false;
    emit_observed(*observed_, false, RejectReason::None, {});
    observed_->parsed.reset();
    worker_.give_observed(std::move(observed_));
}

std::unique_ptr<Observed> StatementPipeline::observe_execute(std::shared_ptr<const void> keeps_sql,
                                                             const std::string& sql, const std::string* sent,
                                                             const std::shared_ptr<const ParsedQuery>& parsed,
                                                             bool keyed, ProbeResult result) {
    if (!worker_.observing()) return nullptr;
    if (keyed && result == ProbeResult::Hit) {
        // Emitted at once: it never goes on the heap (a hit allocates nothing more for it).
        Observed o;
        o.started = std::chrono::steady_clock::now();
        o.sql = &sql;
        o.sent = sent;
        o.parsed = parsed;
        o.protocol = StatementProtocol::Extended;
        o.cache = CacheOutcome::Hit;
        o.rows = hit_rows_;
        emit_extended(o);
        return nullptr;
    }
    auto o = std::make_unique<Observed>();
    o->started = std::chrono::steady_clock::now();
    o->sql = &sql;
    o->sent = sent;
    o->keeps_sql = std::move(keeps_sql);
    o->parsed = parsed;
    o->protocol = StatementProtocol::Extended;
    if (keyed) o->cache = CacheOutcome::Miss;
    else o->uncacheable = uncacheable_why_;
    return o;
}

void StatementPipeline::observe_unreached(std::shared_ptr<const void> keeps_sql, const std::string& sql,
                                          const std::string* sent, const std::shared_ptr<const ParsedQuery>& parsed,
                                          const ErrorFields& failure) {
    std::unique_ptr<Observed> o = observe_execute(std::move(keeps_sql), sql, sent, parsed, false, ProbeResult::Claimed);
    if (!o) return;
    o->uncacheable = "no_connection";
    if (const std::string* code = failure.find('C')) set_sqlstate(o->sqlstate, *code);
    emit_extended(*o);
}

void StatementPipeline::observe_answer(Expected& f, char type, std::string_view body) {
    Observed* o = f.kind == Expected::Kind::Execute ? f.observed.get()
                  : (f.kind == Expected::Kind::Query && observing_) ? observed_.get()
                                                                    : nullptr;
    if (!o) return;
    if (type == 'E') {
        if (strcmp(o->sqlstate, "00000") == 0) copy_sqlstate(body, o->sqlstate);
    } else if (type == 'C') {
        o->rows += tag_rows(body);
    } else if (type == 's') {
        o->rows += o->data_rows;
    }
    // An Execute ends with its CommandComplete, EmptyQueryResponse, PortalSuspended or error; a
    // Query at ReadyForQuery (observe_done).
    if (f.kind == Expected::Kind::Execute) {
        emit_extended(*o);
        f.observed.reset();
    }
}

bool StatementPipeline::emit_extended(const Observed& o) {
    if (skip_emits_ > 0) {
        --skip_emits_;
        return false;
    }
    ++batch_emitted_;
    emit_observed(o, false, RejectReason::None, {});
    return true;
}

void StatementPipeline::emit_lost_observed() {
    for (auto& o : lost_observed_) {
        set_sqlstate(o->sqlstate, "08006");
        emit_extended(*o);
    }
    lost_observed_.clear();
}

void StatementPipeline::observe_retry() {
    if (!observing_) return;
    observed_->rows = 0;
    memcpy(observed_->sqlstate, "00000", 6);
}

void StatementPipeline::emit_observed(const Observed& o, bool refused, RejectReason reason,
                                      std::string_view refusal_code, std::string_view refusal_message) {
    StatementRecord r;
    r.started = o.started;
    r.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - o.started).count();
    r.protocol = o.protocol;
    if (o.sql) r.statement = *o.sql;
    if (o.sent) r.sent = *o.sent;
    // Literals never reach the statistics or a normalized audit line: text without a shape (which
    // did not scan) is shown as such.
    static const std::string unparsed = "<unparsed>";
    r.normalized = o.parsed && o.parsed->shown_shape ? std::string_view(*o.parsed->shown_shape) : std::string_view(unparsed);
    r.digest = o.parsed && o.parsed->shown_shape ? o.parsed->shape_digest : 0;
    r.refused = refused;
    r.reason = reason;
    r.refusal_sqlstate = refusal_code;
    r.refusal_message = refusal_message;
    r.cache = o.cache;
    r.uncacheable_reason = o.uncacheable;
    r.rows = o.rows;
    r.sqlstate = std::string_view(o.sqlstate, 5);
    worker_.statement_done(r, io_.session(), io_.backend_pid());
}

}  // namespace rproxy
