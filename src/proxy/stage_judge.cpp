// Stage "judge": the statement is parsed by the gateway's own parser (memoised per text) and judged
// by the firewall, with the upstream's pg_proc asked about functions the gateway does not know.
// Statements the proxy answers itself (the cache reset, DEALLOCATE of its own names) end here.
#include "proxy/statement_pipeline.hpp"
#include "core/quick_scan.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/message_writer.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

// The exact text seen before costs a hash lookup; the same statement with other literals costs the
// scanner (needed for the cache key anyway); only a new shape runs the grammar.
std::shared_ptr<const ParsedQuery> StatementPipeline::parse(const std::string& sql) {
    StatementMemo& memo = worker_.memo();
    if (auto known = memo.find(sql)) return known;
    ScannedQuery scanned;
    if (!quick_scan(sql, scanned)) scanned = worker_.parser().scan(sql);
    if (scanned.ok && !scanned.shape.empty()) {
        if (auto same = memo.find_shape(scanned.shape, std::move(scanned.normalized))) {
            if (memo.seen_before(sql)) memo.remember(sql, same);
            return same;
        }
    }
    std::string shape = scanned.ok ? scanned.shape : std::string();
    ParsedQuery fresh = worker_.parser().parse(sql, scanned.ok ? &scanned.normalized : nullptr);
    if (!shape.empty()) {
        fresh.shown_shape = std::make_shared<const std::string>(numbered_shape(shape));
        fresh.shape_digest = std::hash<std::string>()(*fresh.shown_shape);
    }
    auto parsed = std::make_shared<const ParsedQuery>(std::move(fresh));
    memo.remember_shape(scanned.shape, parsed);
    memo.remember(sql, parsed);
    return parsed;
}

Verdict StatementPipeline::judge_known(const ParsedQuery& parsed) {
    UpstreamFunctions& functions = upstream().functions();
    UpstreamVolatility lookup = [&functions](const FunctionRef& f) { return functions.lookup(f); };
    return evaluate(parsed, worker_.firewall(), lookup, upstream().access());
}

std::shared_ptr<const Verdict> StatementPipeline::known_verdict(const std::shared_ptr<const ParsedQuery>& parsed) {
    StatementMemo& memo = worker_.memo();
    if (auto v = memo.verdict(*parsed, upstream_->id())) return v;
    auto v = std::make_shared<const Verdict>(judge_known(*parsed));
    if (!v->pending_functions.empty()) return nullptr;
    memo.remember_verdict(parsed, upstream_->id(), v);
    return v;
}

void StatementPipeline::check_judgement(const Verdict& verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure) {
    if (!verdict.allowed) {
        worker_.stats().count_rejection(verdict.reason);
        failure = ErrorFields::make("ERROR", verdict.sqlstate, verdict.message, verdict.position);
        return;
    }
    if (verdict.writes && upstream_->writes_revoked()) {
        // The client logged in while its upstream's row allowed writes; it no longer does.
        worker_.stats().count_rejection(RejectReason::StatementKind);
        failure = ErrorFields::make("ERROR", "25006", "Write operations are not permitted: upstream \"" + upstream_->name() +
                                                          "\" is no longer read_write; reconnect");
        return;
    }
    failure = track_prepared(parsed);
}

Verdict StatementPipeline::finish_judgement(Verdict verdict, const ParsedQuery& parsed, std::optional<ErrorFields>& failure) {
    check_judgement(verdict, parsed, failure);
    return verdict;
}

asio::awaitable<Verdict> StatementPipeline::judge(const ParsedQuery& parsed, ConnectionPtr& conn,
                                              std::optional<ErrorFields>& failure) {
    Verdict verdict = judge_known(parsed);
    if (!verdict.pending_functions.empty()) {
        // Functions the gateway does not know: ask the upstream's pg_proc, then judge again.
        conn = co_await ensure_connection(conn, failure);
        if (!failure) failure = co_await upstream().functions().resolve(*conn, verdict.pending_functions);
        if (failure) co_return verdict;
        verdict = judge_known(parsed);
    }
    co_return finish_judgement(std::move(verdict), parsed, failure);
}

// SELECT rustproxy_cache_reset() / pg_rproxy_cache_reset() sent to the proxy port is answered by
// the gateway (the upstream has no such function), as the tool users migrate from does.
bool StatementPipeline::answer_locally(const ParsedQuery& parsed) {
    if (parsed.statements.size() != 1 || parsed.statements[0].functions.size() != 1) return false;
    const FunctionRef& f = parsed.statements[0].functions[0];
    if (f.name != "rustproxy_cache_reset" && f.name != "pg_rproxy_cache_reset") return false;
    std::string plain = "select " + f.name + " ( )";
    std::string qualified = "select " + f.schema + " . " + f.name + " ( )";
    const std::string& n = parsed.normalized;
    bool exact = n == plain || n == plain + " ;" || (!f.schema.empty() && (n == qualified || n == qualified + " ;"));
    if (!exact) return false;
    if (!worker_.cache_config().client_cache_reset) {
        reject(ErrorFields::make("ERROR", "42501",
                                 "permission denied to reset the result cache through the proxy (pg_rproxy.client_cache_reset is off)"));
        return true;
    }
    std::string count = std::to_string(worker_.cache().cache_reset());
    {
        protocol::MessageWriter w(out_, 'T');
        w.int16(1).cstr(f.name).int32(0).int16(0).int32(20).int16(8).int32(-1).int16(0);
    }
    {
        protocol::MessageWriter w(out_, 'D');
        w.int16(1).int32(static_cast<int32_t>(count.size())).bytes(count.data(), count.size());
    }
    protocol::append_command_complete(out_, "SELECT 1");
    protocol::append_ready_for_query(out_, tx_status_);
    return true;
}

std::optional<ErrorFields> StatementPipeline::track_prepared(const ParsedQuery& parsed) {
    // EXECUTE may only run what this client PREPAREd through the firewall (in string order).
    bool names_statements = false;
    for (const StatementFacts& st : parsed.statements)
        names_statements = names_statements || st.deallocate_all || !st.prepare_name.empty() ||
                           !st.execute_name.empty() || !st.deallocate_name.empty();
    if (!names_statements) return std::nullopt;  // the usual case: no copy on the hot path
    std::set<std::string> known = prepared_;
    for (const StatementFacts& st : parsed.statements) {
        if (st.deallocate_all) known.clear();
        if (!st.prepare_name.empty()) known.insert(st.prepare_name);
        if (!st.deallocate_name.empty() && !known.erase(st.deallocate_name) && !(ext_ && ext_->statements_.count(st.deallocate_name))) {
            // Upstream, other names belong to the proxy's pooled statements: not the client's to drop.
            worker_.stats().count_rejection(RejectReason::UnknownPreparedStatement);
            return ErrorFields::make("ERROR", "26000", "prepared statement \"" + st.deallocate_name + "\" does not exist");
        }
        if (!st.execute_name.empty() && !known.count(st.execute_name)) {
            worker_.stats().count_rejection(RejectReason::UnknownPreparedStatement);
            return ErrorFields::make("ERROR", "26000", "prepared statement \"" + st.execute_name + "\" does not exist");
        }
    }
    prepared_ = std::move(known);
    return std::nullopt;
}

// DEALLOCATE of statements the proxy keeps for this client (protocol-level ones, or all of them
// when no SQL-level PREPARE lives upstream): the upstream knows them under other names.
bool StatementPipeline::deallocate_locally(const ParsedQuery& parsed, std::string& out) {
    if (parsed.statements.size() != 1) return false;
    const StatementFacts& st = parsed.statements[0];
    if (st.deallocate_all && st.kind == "DEALLOCATE ALL" && prepared_.empty()) {
        if (ext_) ext_->statements_.clear();
        protocol::append_command_complete(out, "DEALLOCATE ALL");
        return true;
    }
    if (!st.deallocate_name.empty() && ext_ && ext_->statements_.count(st.deallocate_name) &&
        !prepared_.count(st.deallocate_name)) {
        ext_->statements_.erase(st.deallocate_name);
        protocol::append_command_complete(out, "DEALLOCATE");
        return true;
    }
    return false;
}

}  // namespace rproxy
