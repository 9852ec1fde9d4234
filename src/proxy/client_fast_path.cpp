// The fast-path FunctionCall message. Only calls that read large objects pass (core/fast_path_policy);
// each runs upstream as the statement SELECT pg_catalog.f($1, ...) with the client's own argument
// and result formats, on the client's connection when it is in a transaction (large-object
// descriptors live as long as their transaction), and its one value goes back as
// FunctionCallResponse.
#include "core/fast_path_policy.hpp"
#include "core/format_codes.hpp"
#include "protocol/backend_decode.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/function_call.hpp"
#include "proxy/client_session.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

namespace {

std::string call_statement(const FastPathFunction& f) {
    std::string sql = std::string("SELECT pg_catalog.") + f.name + "(";
    for (std::size_t i = 0; i < f.arg_types.size(); ++i) sql += (i ? ", $" : "$") + std::to_string(i + 1);
    return sql + ")";
}

// What the statement returned, as the server answers a fast-path call: its error as it came, else
// FunctionCallResponse with the one value. Neither (the connection broke): 08006, never a result.
void answer_call(std::string& out, std::string_view relayed) {
    std::optional<std::optional<std::string_view>> value;
    bool failed = false;
    std::size_t used = 0;
    while (auto m = protocol::decode_backend_message(relayed, relayed.size(), used)) {
        if (m->type == 'E') {
            out.append(relayed.substr(0, used));
            failed = true;
        } else if (m->type == 'D') {
            auto row = protocol::decode_data_row(m->body);
            if (row.size() == 1) value = row[0];
        }
        relayed.remove_prefix(used);
    }
    if (failed) return;
    if (value) protocol::append_function_call_response(out, *value);
    else protocol::append_error(out, ErrorFields::make("ERROR", "08006", "the upstream returned no result for the function call"));
}

}  // namespace

asio::awaitable<void> ClientSession::handle_function_call(std::string_view body) {
    protocol::FunctionCallMessage call = protocol::decode_function_call(body);
    FastPathVerdict verdict = judge_fast_path(call.function_oid, call.arg_formats, call.args, call.result_format,
                                              worker_.firewall());
    if (!verdict.function) {
        if (verdict.sqlstate == "25006") worker_.stats().count_rejection(RejectReason::FastPath);
        reject(ErrorFields::make("ERROR", verdict.sqlstate, verdict.message));
        if (!write_now()) co_await flush();
        co_return;
    }
    worker_.count_statement();
    std::optional<ErrorFields> failure;
    ConnectionPtr conn = co_await ensure_connection(pinned_, failure);
    if (!failure) failure = co_await sync_settings(conn);
    if (failure) {
        if (conn) keep_or_release(conn, false);
        reject(*failure);
        if (!write_now()) co_await flush();
        co_return;
    }
    const FastPathFunction& f = *verdict.function;
    std::string sql = call_statement(f);
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (std::size_t i = 0; i < call.args.size(); ++i) {
        const auto& a = call.args[i];
        values.push_back(a ? a->data() : nullptr);
        lengths.push_back(a ? static_cast<int>(a->size()) : 0);
        formats.push_back(format_for(call.arg_formats, i));
    }
    std::string relayed;
    Request request;
    request.describe_rows = false;
    request.buffer = &relayed;
    request.send = [&](PGconn* pg) {
        return PQsendQueryParams(pg, sql.c_str(), static_cast<int>(values.size()), f.arg_types.data(), values.data(),
                                 lengths.data(), formats.data(), call.result_format);
    };
    current_conn_ = conn;
    Outcome outcome = co_await run_on(conn, request, nullptr);
    current_conn_.reset();
    tx_status_ = PQstatus(conn->pg()) == CONNECTION_OK ? transaction_status_byte(conn->pg()) : 'I';
    if (outcome != Outcome::Done) {
        if (outcome == Outcome::ClientGone) cancel_upstream(conn);
        conn->mark_broken();
        keep_or_release(conn, false);
        if (outcome == Outcome::ClientGone) co_return;
        reject(ErrorFields::make("ERROR", "08006", "upstream connection lost"));
    } else {
        keep_or_release(conn, false);
        answer_call(out_, relayed);
        protocol::append_ready_for_query(out_, tx_status_);
    }
    if (!write_now()) co_await flush();
}

}  // namespace rproxy
