// The fast-path FunctionCall message. On read-only upstreams only calls that read large objects pass
// (core/fast_path_policy);
// each is forwarded as the client sent it, on the client's connection when it is in a transaction
// (large-object descriptors live as long as their transaction), and the server's answer relayed.
#include "core/fast_path_policy.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/function_call.hpp"
#include "protocol/message_writer.hpp"
#include "proxy/statement_pipeline.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {


asio::awaitable<void> StatementPipeline::handle_function_call(std::string_view body) {
    protocol::FunctionCallMessage call = protocol::decode_function_call(body);
    FastPathVerdict verdict = judge_fast_path(call.function_oid, call.arg_formats, call.args, call.result_format,
                                              worker_.firewall(), upstream().access());
    if (verdict.allowed && upstream().writes_revoked()) {
        verdict.allowed = false;
        verdict.sqlstate = "25006";
        verdict.message = "Write operations are not permitted: upstream \"" + upstream().name() + "\" is no longer read_write; reconnect";
    }
    if (!verdict.allowed) {
        if (verdict.sqlstate == "25006") worker_.stats().count_rejection(RejectReason::FastPath);
        reject(ErrorFields::make("ERROR", verdict.sqlstate, verdict.message));
        if (!io_.write_now()) co_await io_.flush();
        co_return;
    }
    count_statement();
    if (batch_open()) {
        co_await close_open_batch();
        if (io_.gone() || discard_until_sync_) co_return;  // an error in that batch: skipped up to Sync
    }
    std::optional<ErrorFields> failure;
    ConnectionPtr conn = co_await acquire(nullptr, failure);
    if (!conn) {
        reject(*failure);
        if (!io_.write_now()) co_await io_.flush();
        co_return;
    }
    // writes: on a read-write upstream a call may write anything (lo_write, a function of the
    // upstream's own), as far as the cache knows.
    if (upstream().access() == Access::ReadWrite) {
        Verdict unseen;
        unseen.writes = unseen.writes_unseen = true;
        note_writes(unseen);
    }
    begin_write_exchange(false);
    // forward: the call goes upstream as the client sent it; the server answers it as usual.
    protocol::append_message(conn->output(), 'F', body);
    Expected e;
    e.kind = Expected::Kind::FunctionCall;
    expected_.push_back(std::move(e));
    flushed_since_start_ = false;
    Outcome outcome = Outcome::Lost;
    if (co_await conn->send()) outcome = co_await relay_all(conn, true, false);
    if (outcome == Outcome::Ready) {
        tx_status_ = conn->transaction_status();
        relay_notifications(conn);
        // On a read-write upstream the call may have left anything on the connection.
        bool opaque = upstream().access() == Access::ReadWrite;
        if (opaque && dirty_reason_ == PinReason::None) dirty_reason_ = PinReason::Opaque;
        keep_or_release(conn, opaque);
        protocol::append_ready_for_query(out_, tx_status_);
    } else {
        if (writes_) writes_->lost();
        if (outcome == Outcome::ClientGone) cancel_upstream(conn);
        conn->mark_broken();
        abandon_expected();
        keep_or_release(conn, false);
        if (outcome == Outcome::ClientGone) co_return;
        reject(ErrorFields::make("ERROR", "08006", "upstream connection lost"));
    }
    if (!io_.write_now()) co_await io_.flush();
}

}  // namespace rproxy
