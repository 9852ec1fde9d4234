// Every upstream a worker's clients use: pg_rproxy.upstream, each row of pg_rproxy_upstreams and
// each conninfo a router returned, made per database and upstream role when the conninfo leaves
// those to the client. A row that changes gets a new Upstream for new clients, while connected
// clients keep the one they have until they leave.
#pragma once
#include "core/pure_layer.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth_snapshot.hpp"
#include "core/config.hpp"
#include "core/upstream_definition.hpp"
#include "proxy/upstream.hpp"

namespace rproxy {

class UpstreamRegistry {
public:
    UpstreamRegistry(boost::asio::any_io_executor ex, BlockingHelper& helper, std::function<void()> on_change,
                     ServerHealth* health);

    // The pool settings (pg_rproxy.*) every upstream starts from, and pg_rproxy.upstream.
    void configure(const UpstreamConfig& settings);
    const UpstreamPtr& default_upstream() const { return default_; }
    bool default_configured() const { return !settings_.conninfo.empty(); }

    // The upstream of a table row (or a router's conninfo) for a client. Where the conninfo names
    // no dbname, the client's database is used; no user, the client's role. Mapped credentials
    // (pg_rproxy_role_mapping) replace the conninfo's user. nullptr: too many distinct upstreams.
    UpstreamPtr find(const UpstreamDefinition& def, const std::string& database, const std::string& role,
                     const std::optional<UpstreamCredentials>& credentials);
    // pg_rproxy.upstream with a role's mapped credentials (none: the conninfo's own).
    UpstreamPtr find_default(const std::optional<UpstreamCredentials>& credentials);

    // Rows no longer in pg_rproxy_upstreams: no new client gets their upstreams.
    void retire_missing(const std::map<std::string, UpstreamDefinition>& rows);

    void close_idle();
    void forget_learned();  // a reload: functions may have changed upstream
    std::size_t busy() const;
    std::size_t idle() const;
    // Every upstream a client of this worker may use, those of changed rows that connected
    // clients keep included.
    template <typename F>
    void for_each(F&& f) const {  // f(Upstream&)
        f(*default_);
        for (const auto& [key, e] : entries_) f(*e.upstream);
        for (const auto& r : retired_)
            if (auto u = r.upstream.lock()) f(*u);
    }

private:
    struct Entry {
        UpstreamDefinition def;  // as the row was (conninfo before the client's defaults)
        UpstreamConfig cfg;      // what the upstream was configured with
        UpstreamPtr upstream;
    };
    UpstreamConfig config_for(const UpstreamDefinition& def, const std::string& conninfo) const;
    UpstreamPtr make(const std::string& key, const UpstreamDefinition& def, const std::string& conninfo);

    boost::asio::any_io_executor ex_;
    BlockingHelper& helper_;
    std::function<void()> on_change_;
    ServerHealth* health_;
    UpstreamConfig settings_;
    UpstreamPtr default_;
    std::map<std::string, Entry> entries_;
    struct Retired {
        UpstreamDefinition def;
        UpstreamConfig cfg;
        std::weak_ptr<Upstream> upstream;  // alive while a client holds it
    };
    std::vector<Retired> retired_;
    void retire(std::map<std::string, Entry>::iterator it);
    static constexpr std::size_t kMaxUpstreams = 256;
};

}  // namespace rproxy
