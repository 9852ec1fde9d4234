// The pipeline's session state at startup and at the edges of statements: the client's settings
// and what it is told, its notifications, cancelling what runs upstream.
#include <libpq-fe.h>

#include "protocol/backend_messages.hpp"
#include "proxy/statement_pipeline.hpp"

#include <cctype>

#include "core/firewall_policy.hpp"
#include "proxy/worker.hpp"

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

StatementPipeline::StatementPipeline(Worker& worker, ClientIo& io)
    : worker_(worker), io_(io), out_(io.output()), upstream_(worker.default_upstream()) {
    upstream_->add_client(1);
}

StatementPipeline::~StatementPipeline() {
    if (upstream_) upstream_->add_client(-1);
}

void StatementPipeline::count_statement() {
    worker_.count_statement();
    upstream_->count_statement();
}

void StatementPipeline::set_upstream(UpstreamPtr upstream) {
    upstream_->add_client(-1);
    upstream_ = std::move(upstream);
    upstream_->add_client(1);
}

void StatementPipeline::adopt(ConnectionPtr conn) {
    // Never pooled (it has no pool: Upstream::release closes it); its results are cached as
    // any client's of that upstream role.
    pinned_ = std::move(conn);
    pinned_->tap(tap_, tap_session_);
}

void StatementPipeline::set_tap(MessageLog* log, int32_t session) {
    tap_ = log;
    tap_session_ = session;
    if (pinned_) pinned_->tap(log, session);
    if (ext_ && ext_->batch_conn_) ext_->batch_conn_->tap(log, session);
    if (ConnectionPtr running = current_conn_.lock()) running->tap(log, session);
}

asio::awaitable<std::optional<ErrorFields>> StatementPipeline::start(const protocol::StartupPacket& packet) {
    for (const auto& [name, value] : packet.params) {
        if (name == "user" || name == "database" || name == "options") continue;
        if (name == "replication") {
            if (value == "false" || value == "0" || value == "off" || value == "no") continue;
            co_return ErrorFields::make("FATAL", "0A000", "replication connections are not supported by pg_rproxy");
        }
        if (name.rfind("_pq_.", 0) == 0) continue;  // protocol extensions: none supported
        settings_.set(name, value);
    }
    if (const std::string* options = packet.param("options")) {
        for (auto& [name, value] : protocol::parse_startup_options(*options)) settings_.set(name, value);
    }
    // Settings in the startup packet (and its options) are SETs too: the same ones are refused,
    // or -c default_transaction_read_only=off would open a read-only upstream to writes.
    for (const auto& [name, value] : settings_.values()) {
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (setting_always_denied(lower, upstream().access()) || worker_.firewall().denied_settings.count(lower)) {
            worker_.stats().count_rejection(RejectReason::Setting);
            co_return ErrorFields::make("FATAL", "25006", "setting " + lower + " cannot be changed through pg_rproxy");
        }
    }
    if (!settings_.get("application_name")) settings_.set("application_name", "");
    settings_ = worker_.intern_settings(settings_);
    startup_settings_ = settings_;

    // The upstream decides the values the client is told (server_version, encodings, DateStyle
    // after the client's own settings). Learned once per distinct set of client settings.
    // A passthrough client's own connection takes its settings now, as a pooled one would later.
    if (pinned_ || !upstream().reported_parameters(settings_)) {
        std::optional<ErrorFields> failure;
        ConnectionPtr conn = co_await acquire(nullptr, failure);  // a dead pooled connection is replaced
        if (!conn) co_return failure;
        if (conn != pinned_) upstream().release(conn);
    }
    co_return std::nullopt;
}

void StatementPipeline::reject(const ErrorFields& e) {
    observe_error(e);
    protocol::append_error(out_, e);
    protocol::append_ready_for_query(out_, tx_status_);
}

void StatementPipeline::announce_parameters() {
    told_.start(upstream().shared_reported_parameters(settings_));
    for (const auto& [name, value] : *upstream().reported_parameters(settings_))
        protocol::append_parameter_status(out_, name, value);
}

bool StatementPipeline::relay_notifications(const ConnectionPtr& conn) {
    std::string n = conn->take_notifications();
    if (n.empty()) return false;
    out_ += n;
    return true;
}

// PQcancel blocks (it connects to the server): it runs on the helper thread, never on the loop.
void StatementPipeline::cancel_upstream(const ConnectionPtr& conn) {
    if (auto raw = conn->raw_cancel()) {
        worker_.helper().submit([raw = *raw] { raw.send(); });
        return;
    }
    if (PGcancel* cancel = conn->cancel_request()) {
        worker_.helper().submit([cancel] {
            char errbuf[256];
            PQcancel(cancel, errbuf, sizeof errbuf);
            PQfreeCancel(cancel);
        });
    }
}

}  // namespace rproxy
