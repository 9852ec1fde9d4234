// Stage "acquire": the upstream connection a statement runs on, carrying the client's settings.
#include "proxy/statement_pipeline.hpp"
#include "core/reported_parameters.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

asio::awaitable<ConnectionPtr> StatementPipeline::ensure_connection(ConnectionPtr conn, std::optional<ErrorFields>& failure) {
    if (conn) co_return conn;
    if (upstream().passthrough()) {
        // Only the client's own login opens a connection: once it is gone, so is the session.
        failure = ErrorFields::make("ERROR", "08006", "the upstream connection of this session is gone (auth passthrough: log in again)");
        co_return nullptr;
    }
    try {
        ConnectionPtr taken = co_await upstream().acquire();
        if (tap_) taken->tap(tap_, tap_session_);
        co_return taken;
    } catch (const UpstreamUnavailable& e) {
        failure = e.fields;
    }
    co_return nullptr;
}

// The usual case without a coroutine: a connection at hand (held, pinned, or idle in the pool)
// that already carries the client's settings. Otherwise nullptr, and a connection it took from
// the pool is left in held for acquire() to bring up to date.
ConnectionPtr StatementPipeline::acquire_now(ConnectionPtr& held) {
    ConnectionPtr conn = held ? held : pinned_;
    if (!conn) {
        conn = upstream().try_acquire_now();
        if (!conn) return nullptr;
        if (tap_) conn->tap(tap_, tap_session_);  // untapped when it goes back (Upstream::release)
    }
    if (conn->applied_settings() == settings_ && upstream().reported_parameters(settings_)) {
        held.reset();
        return conn;
    }
    held = std::move(conn);
    return nullptr;
}

// held (a connection this statement already has), the pinned connection, or one from the pool, with the client's settings applied. A connection
// that broke while syncing is dropped and another one tried once.
asio::awaitable<ConnectionPtr> StatementPipeline::acquire(ConnectionPtr held, std::optional<ErrorFields>& failure) {
    for (int attempt = 0;; ++attempt) {
        ConnectionPtr conn = co_await ensure_connection(held ? held : pinned_, failure);
        held.reset();
        if (!conn) co_return nullptr;
        failure = co_await sync_settings(conn);
        if (!failure) co_return conn;
        if (!conn->broken() || conn == pinned_ || attempt > 0) {
            keep_or_release(conn, false);
            co_return nullptr;
        }
        keep_or_release(conn, false);
        failure.reset();
    }
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::sync_settings(const ConnectionPtr& conn) {
    if (conn->applied_settings() == settings_ && upstream().reported_parameters(settings_)) co_return std::nullopt;
    std::string sql = settings_sync_sql(conn->applied_settings(), settings_);
    if (!sql.empty()) {
        // A failed sync runs in one implicit transaction, so the connection keeps what it had.
        auto result = co_await conn->run_internal(sql);
        if (result.error) co_return result.error;
    }
    conn->applied_settings() = settings_;
    Upstream::ReportedParameters reported;
    for (const char* name : kReportedParameters) {
        if (const std::string* v = conn->parameter(name)) reported.emplace_back(name, *v);
    }
    upstream().remember_parameters(settings_, std::move(reported));
    co_return std::nullopt;
}

}  // namespace rproxy
