#include "proxy/upstream_registry.hpp"

#include "proxy/connect_spec.hpp"

namespace rproxy {

UpstreamRegistry::UpstreamRegistry(boost::asio::any_io_executor ex, BlockingHelper& helper,
                                   std::function<void()> on_change, ServerHealth* health)
    : ex_(ex), helper_(helper), on_change_(std::move(on_change)), health_(health) {
    default_ = std::make_shared<Upstream>(ex_, helper_, on_change_, health_, "");
}

void UpstreamRegistry::configure(const UpstreamConfig& settings) {
    settings_ = settings;
    default_->configure(settings, Balance::RoundRobin);
    // pg_rproxy.upstream with mapped credentials follows it: new clients get the new setting.
    for (auto i = entries_.begin(); i != entries_.end();) {
        if (i->second.def.name.empty() && i->second.def.conninfo != settings.conninfo) retire(i++);
        else ++i;
    }
    for (auto& [key, e] : entries_) {
        e.cfg = config_for(e.def, e.cfg.conninfo);
        e.upstream->configure(e.cfg, e.def.balance);
    }
    for (auto& r : retired_)
        if (auto u = r.upstream.lock()) {
            r.cfg = config_for(r.def, r.cfg.conninfo);  // pool sizes and timeouts follow the settings
            u->configure(r.cfg, r.def.balance);
        }
}

void UpstreamRegistry::retire(std::map<std::string, Entry>::iterator it) {
    std::erase_if(retired_, [](const Retired& r) { return r.upstream.expired(); });
    retired_.push_back(Retired{it->second.def, it->second.cfg, it->second.upstream});
    entries_.erase(it);
}

void UpstreamRegistry::retire_missing(const std::map<std::string, UpstreamDefinition>& rows) {
    for (auto i = entries_.begin(); i != entries_.end();) {
        const std::string& name = i->second.def.name;
        // Table rows only: pg_rproxy.upstream's, a router's and a 0.6.0 rule's are not in the table.
        bool from_table = !name.empty() && name.rfind("router: ", 0) != 0 && name.rfind("rule: ", 0) != 0;
        auto row = rows.find(name);
        bool gone = from_table && row == rows.end();
        // Gone, or changed to read-only: clients connected through it stop writing.
        if (i->second.def.access == Access::ReadWrite &&
            (gone || (from_table && row->second.access != Access::ReadWrite)))
            i->second.upstream->revoke_writes();
        if (gone) retire(i++);
        else ++i;
    }
}

UpstreamConfig UpstreamRegistry::config_for(const UpstreamDefinition& def, const std::string& conninfo) const {
    UpstreamConfig cfg = settings_;
    cfg.conninfo = conninfo;
    cfg.read_write = def.access == Access::ReadWrite;
    cfg.passthrough = def.auth == UpstreamAuth::Passthrough;
    if (def.pool_size > 0) cfg.pool_size = def.pool_size;
    return cfg;
}

UpstreamPtr UpstreamRegistry::make(const std::string& key, const UpstreamDefinition& def, const std::string& conninfo) {
    // A row that no longer allows writes: its clients may not go on writing through the old one.
    auto narrowed = [&def](const Entry& e) {
        if (e.def.access == Access::ReadWrite && def.access != Access::ReadWrite) e.upstream->revoke_writes();
    };
    auto it = entries_.find(key);
    if (it != entries_.end()) {
        if (it->second.def == def) return it->second.upstream;
        narrowed(it->second);
        retire(it);  // the row changed: its clients keep the old one
    }
    // Upstreams of rows that changed since: no new client gets them.
    for (auto i = entries_.begin(); i != entries_.end();) {
        if (i->second.def.name == def.name && !(i->second.def == def)) {
            narrowed(i->second);
            retire(i++);
        } else {
            ++i;
        }
    }
    if (entries_.size() >= kMaxUpstreams) {
        for (auto i = entries_.begin(); i != entries_.end();) {
            if (i->second.upstream.use_count() == 1) i = entries_.erase(i);  // nobody uses it
            else ++i;
        }
        if (entries_.size() >= kMaxUpstreams) return nullptr;
    }
    Entry e{def, config_for(def, conninfo), std::make_shared<Upstream>(ex_, helper_, on_change_, health_, def.name)};
    e.upstream->configure(e.cfg, def.balance);
    e.upstream->set_pool_mode(def.pool_mode);
    UpstreamPtr u = e.upstream;
    entries_.emplace(key, std::move(e));
    on_change_();
    return u;
}

UpstreamPtr UpstreamRegistry::find(const UpstreamDefinition& def, const std::string& database, const std::string& role,
                                   const std::optional<UpstreamCredentials>& credentials) {
    std::string conninfo = def.conninfo;
    if (auto pairs = parse_conninfo(def.conninfo, nullptr)) {
        if (!conninfo_value(*pairs, "dbname")) set_conninfo_value(*pairs, "dbname", database);
        if (def.auth == UpstreamAuth::Passthrough) {
            // The client's own password goes upstream in the relayed exchange, never a stored one;
            // a mapping only renames the user (which md5 cannot survive: see the rules' check).
            if (!conninfo_value(*pairs, "user")) set_conninfo_value(*pairs, "user", credentials ? credentials->user : role);
        } else if (credentials) {
            set_conninfo_value(*pairs, "user", credentials->user);
            if (!credentials->password.empty()) set_conninfo_value(*pairs, "password", credentials->password);
        } else if (!conninfo_value(*pairs, "user")) {
            set_conninfo_value(*pairs, "user", role);
        }
        conninfo = format_conninfo(*pairs);
    }
    std::string key = def.name + '\0' + conninfo;
    return make(key, def, conninfo);
}

UpstreamPtr UpstreamRegistry::find_default(const std::optional<UpstreamCredentials>& credentials) {
    if (!credentials) return default_;
    UpstreamDefinition def;
    def.conninfo = settings_.conninfo;
    std::string conninfo = settings_.conninfo;
    if (auto pairs = parse_conninfo(settings_.conninfo, nullptr)) {
        set_conninfo_value(*pairs, "user", credentials->user);
        if (!credentials->password.empty()) set_conninfo_value(*pairs, "password", credentials->password);
        conninfo = format_conninfo(*pairs);
    }
    return make(std::string(1, '\0') + conninfo, def, conninfo);
}

void UpstreamRegistry::close_idle() {
    for_each([](Upstream& u) { u.close_idle(); });
}

void UpstreamRegistry::forget_learned() {
    for_each([](Upstream& u) { u.functions().clear(); });
}

std::size_t UpstreamRegistry::busy() const {
    std::size_t n = 0;
    for_each([&n](const Upstream& u) { n += u.busy(); });
    return n;
}

std::size_t UpstreamRegistry::idle() const {
    std::size_t n = 0;
    for_each([&n](const Upstream& u) { n += u.idle(); });
    return n;
}

}  // namespace rproxy
