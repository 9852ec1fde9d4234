// The worker's observers of finished statements and of connection attempts: the
// pg_rproxy_statements counters in shared memory and the audit log's lines.
#include "proxy/worker.hpp"

namespace rproxy {

void Worker::load_observers() {
    observe_ = host_.observe_config();
    audit_.configure(observe_);
    counting_metrics_ = host_.metrics_config().port > 0;
    observing_ = observe_.track_statements || audit_.enabled() || counting_metrics_;
}

void Worker::statement_done(const StatementRecord& r, const SessionInfo& who, int32_t session) {
    if (observe_.track_statements) host_.record_statement(r, who.upstream, who.role);
    if (counting_metrics_) host_.count_statement_metrics(r, who.upstream);
    if (audit_.enabled()) {
        audit_.statement(r, who, session);
        report_log_errors(audit_.file(), "audit log", audit_drops_reported_);
    }
}

void Worker::connection_event(ConnEvent e, const SessionInfo& who, int32_t session, std::string_view sqlstate) {
    host_.count_event(e);
    audit_connection(e, who, session, sqlstate);
}

void Worker::audit_connection(ConnEvent e, const SessionInfo& who, int32_t session, std::string_view sqlstate) {
    if (audit_.enabled()) {
        audit_.connection(e, who, session, sqlstate);
        report_log_errors(audit_.file(), "audit log", audit_drops_reported_);
    }
}

std::shared_ptr<const SessionInfo> Worker::intern_identity(const SessionInfo& s) {
    SessionInfo id;
    id.role = s.role;
    id.database = s.database;
    id.client_address = s.client_address;
    id.server_name = s.server_name;
    id.upstream = s.upstream;
    id.auth_method = s.auth_method;
    id.tls = s.tls;
    std::string key = id.role + '\0' + id.database + '\0' + id.client_address + '\0' + id.server_name + '\0' +
                      id.upstream + '\0' + id.auth_method + (id.tls ? "\1" : "\0");
    auto it = identities_.find(key);
    if (it != identities_.end()) {
        if (auto known = it->second.lock()) return known;
    }
    // Forgotten ones are swept when the map has doubled since the last sweep.
    static constexpr std::size_t kSweepFloor = 256;
    if (identities_.size() >= kSweepFloor && identities_.size() >= 2 * identities_swept_) {
        for (auto i = identities_.begin(); i != identities_.end();) {
            if (i->second.expired()) i = identities_.erase(i);
            else ++i;
        }
        identities_swept_ = identities_.size();
    }
    auto made = std::make_shared<const SessionInfo>(std::move(id));
    identities_[key] = made;
    return made;
}

}  // namespace rproxy
