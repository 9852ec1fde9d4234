#include "core/metrics_text.hpp"

#include <charconv>
#include <cstdio>
#include <initializer_list>
#include <utility>

namespace rproxy {

int latency_bucket(double ms) {
    for (int i = 0; i < kLatencyBuckets; ++i)
        if (ms <= kLatencyBucketsMs[i]) return i;
    return kLatencyBuckets;
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

namespace {

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

std::string number(double v, std::chars_format fmt = std::chars_format::general) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, fmt);
    return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

class Writer {
public:
    // One family: its HELP and TYPE lines, then its samples.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;  // constant texts without backslashes or newlines
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void sample(std::string_view name, Labels labels, std::string_view value) {
        out_ += name;
        if (labels.size() > 0) {
            out_ += '{';
            bool first = true;
            for (const auto& [k, v] : labels) {
                if (!first) out_ += ',';
                first = false;
                out_ += k;
                out_ += "=\"";
                out_ += escape_label_value(v);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }
    void sample(std::string_view name, Labels labels, uint64_t value) { sample(name, labels, std::to_string(value)); }
    // A family of one sample without labels.
    void single(std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
        family(name, type, help);
        sample(name, {}, value);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

void histogram(Writer& w, const std::vector<LatencyHistogram>& hs) {
    constexpr std::string_view name = "pg_rproxy_statement_duration_seconds";
    w.family(name, "histogram", "Time from a statement's arrival to the end of its answer, per upstream.");
    std::string le[kLatencyBuckets];
    for (int i = 0; i < kLatencyBuckets; ++i) le[i] = number(kLatencyBucketsMs[i] / 1000.0, std::chars_format::fixed);
    for (const auto& h : hs) {
        uint64_t cumulative = 0;
        for (int i = 0; i < kLatencyBuckets; ++i) {
            cumulative += h.counts[i];
            w.sample("pg_rproxy_statement_duration_seconds_bucket", {{"upstream", h.upstream}, {"le", le[i]}},
                     cumulative);
        }
        cumulative += h.counts[kLatencyBuckets];
        w.sample("pg_rproxy_statement_duration_seconds_bucket", {{"upstream", h.upstream}, {"le", "+Inf"}}, cumulative);
        w.sample("pg_rproxy_statement_duration_seconds_sum", {{"upstream", h.upstream}}, number(h.sum_seconds));
        w.sample("pg_rproxy_statement_duration_seconds_count", {{"upstream", h.upstream}}, cumulative);
    }
}

void servers(Writer& w, const std::vector<ServerMetrics>& servers) {
    w.family("pg_rproxy_server_healthy", "gauge", "1 when the upstream server's last check or connection succeeded.");
    for (const auto& s : servers)
        w.sample("pg_rproxy_server_healthy", {{"upstream", s.upstream}, {"host", s.host}, {"port", s.port}},
                 s.healthy ? 1 : 0);
    w.family("pg_rproxy_server_role", "gauge", "The role the health check found (1 for the current role).");
    for (const auto& s : servers)
        w.sample("pg_rproxy_server_role",
                 {{"upstream", s.upstream}, {"host", s.host}, {"port", s.port}, {"role", s.role}}, 1);
    w.family("pg_rproxy_server_connections", "gauge", "Pooled upstream connections, busy or idle.");
    for (const auto& s : servers) {
        w.sample("pg_rproxy_server_connections",
                 {{"upstream", s.upstream}, {"host", s.host}, {"port", s.port}, {"state", "busy"}}, s.busy);
        w.sample("pg_rproxy_server_connections",
                 {{"upstream", s.upstream}, {"host", s.host}, {"port", s.port}, {"state", "idle"}}, s.idle);
    }
    w.family("pg_rproxy_server_clients", "gauge", "Clients routed to the upstream server.");
    for (const auto& s : servers)
        w.sample("pg_rproxy_server_clients", {{"upstream", s.upstream}, {"host", s.host}, {"port", s.port}},
                 s.clients);
    w.family("pg_rproxy_server_errors_total", "counter", "Failed health checks and connection attempts.");
    for (const auto& s : servers)
        w.sample("pg_rproxy_server_errors_total", {{"upstream", s.upstream}, {"host", s.host}, {"port", s.port}},
                 s.errors);
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& s) {
    Writer w;
    w.single("pg_rproxy_workers", "gauge", "Listener workers running.", s.workers);
    w.family("pg_rproxy_clients", "gauge",
             "Client connections: active (message loop running) or parked (idle, holding no buffers).");
    w.sample("pg_rproxy_clients", {{"state", "active"}}, s.clients_active);
    w.sample("pg_rproxy_clients", {{"state", "parked"}}, s.clients_parked);
    w.single("pg_rproxy_clients_pinned", "gauge", "Authenticated clients holding an upstream connection.",
             s.clients_pinned);

    w.family("pg_rproxy_connection_events_total", "counter", "Connection attempts and logins by outcome.");
    for (int i = 0; i < kConnEventCount; ++i)
        w.sample("pg_rproxy_connection_events_total", {{"outcome", conn_event_name(static_cast<ConnEvent>(i))}},
                 s.connection_events[i]);

    w.family("pg_rproxy_statements_total", "counter", "Statements by the firewall's verdict.");
    w.sample("pg_rproxy_statements_total", {{"verdict", "allowed"}}, s.statements_allowed);
    w.sample("pg_rproxy_statements_total", {{"verdict", "refused"}}, s.statements_refused);
    w.family("pg_rproxy_statement_cache_results_total", "counter", "Statements by how the result cache served them.");
    w.sample("pg_rproxy_statement_cache_results_total", {{"result", "hit"}}, s.cache_hit);
    w.sample("pg_rproxy_statement_cache_results_total", {{"result", "miss"}}, s.cache_miss);
    w.sample("pg_rproxy_statement_cache_results_total", {{"result", "uncacheable"}}, s.cache_uncacheable);
    w.family("pg_rproxy_refusals_total", "counter", "Statements the firewall refused, by reason.");
    for (int i = 1; i < kRejectReasonCount; ++i)  // 0 is RejectReason::None
        w.sample("pg_rproxy_refusals_total", {{"reason", reject_reason_name(static_cast<RejectReason>(i))}},
                 s.refusals[i]);

    w.single("pg_rproxy_cache_hits_total", "counter", "Result cache lookups answered from the cache.", s.cache_hits);
    w.single("pg_rproxy_cache_misses_total", "counter", "Result cache lookups that went upstream.", s.cache_misses);
    w.single("pg_rproxy_cache_coalesced_total", "counter", "Lookups that waited for another client's fill.",
             s.cache_coalesced);
    w.single("pg_rproxy_cache_evictions_total", "counter", "Entries evicted for room.", s.cache_evictions);
    w.single("pg_rproxy_cache_expirations_total", "counter", "Entries dropped after their TTL.", s.cache_expirations);
    w.single("pg_rproxy_cache_stores_total", "counter", "Results stored in the cache.", s.cache_stores);
    w.single("pg_rproxy_cache_entries", "gauge", "Entries in the result cache.", s.cache_entries);
    w.single("pg_rproxy_cache_max_entries", "gauge", "pg_rproxy.cache_max_entries.", s.cache_max_entries);
    w.single("pg_rproxy_cache_bytes", "gauge", "Shared memory the cached results use.", s.cache_bytes);
    w.single("pg_rproxy_cache_budget_bytes", "gauge", "pg_rproxy.cache_size.", s.cache_bytes_budget);
    auto l2 = [&s](L2Counter c) { return s.l2[static_cast<int>(c)]; };
    w.single("pg_rproxy_cache_l2_hits_total", "counter", "Lookups answered from Redis (pg_rproxy.redis).", l2(L2Counter::Hits));
    w.single("pg_rproxy_cache_l2_misses_total", "counter", "Lookups Redis did not have.", l2(L2Counter::Misses));
    w.single("pg_rproxy_cache_l2_errors_total", "counter", "Failed or timed-out Redis operations and connections.",
             l2(L2Counter::Errors));
    w.single("pg_rproxy_cache_l2_corrupt_total", "counter", "Redis values ignored because they did not check out.",
             l2(L2Counter::Corrupt));
    w.single("pg_rproxy_cache_l2_stores_total", "counter", "Results stored in Redis.", l2(L2Counter::Stores));
    w.single("pg_rproxy_cache_l2_waits_total", "counter", "Misses that waited for another gateway's fill.",
             l2(L2Counter::Waits));
    w.single("pg_rproxy_cache_l2_bytes_read_total", "counter", "Bytes of results read from Redis.", l2(L2Counter::BytesRead));
    w.single("pg_rproxy_cache_l2_bytes_written_total", "counter", "Bytes of results written to Redis.",
             l2(L2Counter::BytesWritten));
    w.family("pg_rproxy_cache_uncacheable_total", "counter", "Statements not cached, by reason.");
    for (int i = 0; i < kUncacheableCount; ++i)
        w.sample("pg_rproxy_cache_uncacheable_total", {{"reason", uncacheable_name(static_cast<Uncacheable>(i))}},
                 s.uncacheable[i]);

    servers(w, s.servers);
    histogram(w, s.latency);

    w.single("pg_rproxy_client_received_bytes_total", "counter", "Bytes read from client connections.",
             s.client_received_bytes);
    w.single("pg_rproxy_client_sent_bytes_total", "counter", "Bytes written to client connections.",
             s.client_sent_bytes);
    w.single("pg_rproxy_upstream_received_bytes_total", "counter", "Bytes read from upstream connections.",
             s.upstream_received_bytes);
    w.single("pg_rproxy_upstream_sent_bytes_total", "counter", "Bytes written to upstream connections.",
             s.upstream_sent_bytes);
    return w.take();
}

}  // namespace rproxy
