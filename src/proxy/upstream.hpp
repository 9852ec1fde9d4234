// One upstream as a client's statements see it: the servers of its host list, each with its own
// pool in this worker, and what the proxy learned from them, which belongs to this upstream alone
// (the parameters it reports for a set of client settings, its functions' volatility, its cache
// identity). acquire() spreads statements over the servers by the upstream's balance, skips the
// servers that are down, and tries another server once when one cannot be connected to.
#pragma once
#include "core/pure_layer.hpp"

#include <utility>
#include <boost/asio.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/config.hpp"
#include "core/server_state.hpp"
#include "core/upstream_definition.hpp"
#include "proxy/server_pool.hpp"
#include "proxy/upstream_functions.hpp"
#include "proxy/upstream_relations.hpp"

namespace rproxy {

// What the workers share about the servers' health (proxy/health_checker), asked per new
// connection of an upstream with several servers.
class ServerHealth {
public:
    virtual ~ServerHealth() = default;
    // The server's place in the shared table (-1: none, it then always counts as healthy).
    virtual int server_slot(const std::string& upstream, const std::string& host, const std::string& port) = 0;
    virtual ServerState state(int slot) = 0;
    // A connection attempt failed: the server gets no new work until a check passes.
    virtual void connect_failed(int slot, const std::string& why) = 0;
};

class Upstream {
public:
    Upstream(boost::asio::any_io_executor ex, BlockingHelper& helper, std::function<void()> on_change,
             ServerHealth* health, std::string name);

    // cfg.conninfo may name several servers; a different server list replaces the pools (connections
    // out with clients are closed when they come back).
    void configure(const UpstreamConfig& cfg, Balance balance);
    boost::asio::awaitable<ConnectionPtr> acquire();  // throws UpstreamUnavailable
    ConnectionPtr try_acquire_now();                  // an idle connection, or nullptr: acquire() must wait
    void release(ConnectionPtr conn);
    // The server ended this connection (shutting down, the backend terminated): its idle ones may
    // be gone too, so they are closed, and a retry connects afresh (or fails over).
    void connection_lost(const ServerConnection& conn);
    void close_idle();

    // What the upstream reported (ParameterStatus) on a connection carrying exactly these client
    // settings, so that new clients with the same settings log in without an upstream round trip.
    using ReportedParameters = std::vector<std::pair<std::string, std::string>>;
    const ReportedParameters* reported_parameters(const SessionSettings& settings) const;
    // The same, shared: clients keep it as what they were told at startup.
    std::shared_ptr<const ReportedParameters> shared_reported_parameters(const SessionSettings& settings) const;
    void remember_parameters(const SessionSettings& settings, ReportedParameters params);

    // host list/port/database/role of the current setting: part of every cache key.
    const std::string& identity() const { return identity_; }
    const std::string& role() const { return role_; }
    // Servers and database without the role: whose data the cache's freshness counters follow.
    const std::string& data_identity() const { return data_identity_; }
    Access access() const { return cfg_.read_write ? Access::ReadWrite : Access::ReadOnly; }
    // Clients log in to the upstream themselves (relayed): no connection is opened without one.
    bool passthrough() const { return cfg_.passthrough; }
    // Its row was deleted or made read-only: the clients still on it must stop writing.
    void revoke_writes() { writes_revoked_ = true; }
    bool writes_revoked() const { return writes_revoked_; }
    // A connection for one client's login (passthrough): to a usable server, stopped where the
    // server asks for authentication, for the client to answer. Its own, never pooled.
    boost::asio::awaitable<std::pair<ConnectionPtr, std::string>> open_for_login();
    const std::string& name() const { return name_; }
    PoolMode pool_mode() const { return pool_mode_; }
    void set_pool_mode(PoolMode m) { pool_mode_ = m; }
    // Unique in the process, never reused: what was learned about this upstream is keyed by it.
    uint64_t id() const { return id_; }
    const UpstreamConfig& config() const { return cfg_; }
    // "host:port" of the server a connection of this upstream is on ("" if none).
    std::string server_of(const ServerConnection& conn) const;

    // Volatility of this upstream's own functions, as its pg_proc says: never applied to another
    // upstream, where a function of the same name may be volatile.
    UpstreamFunctions& functions() { return functions_; }
    // What writes to its relations reach (read-write upstreams).
    UpstreamRelations& relations() { return relations_; }

    std::size_t busy() const;
    std::size_t idle() const;
    std::size_t server_count() const { return servers_.size(); }
    // Each server's health slot and this worker's connections on it.
    template <typename F>
    void for_each_server(F&& f) const {
        for (const auto& s : servers_) f(s.slot, *s.pool);
    }
    // Clients whose statements go here (StatementPipeline counts them).
    std::size_t clients() const { return clients_; }
    // The upstream's own row in the shared table (host ""), for pg_rproxy_upstream_stats.
    int slot() const { return slot_; }
    void count_statement() { ++statements_; }
    void count_cache_hit() { ++cache_hits_; }
    // What was counted since the last call (the worker keeps the sums: this object may go).
    std::pair<uint64_t, uint64_t> take_counts() {
        return {std::exchange(statements_, 0), std::exchange(cache_hits_, 0)};
    }
    void add_client(int delta) { clients_ = std::size_t(std::ptrdiff_t(clients_) + delta); }
    std::string servers_text() const;  // host:port of each server, comma separated

private:
    struct Server {
        std::string host, port;
        std::shared_ptr<ServerPool> pool;
        int slot = -1;
    };
    // The server the next new connection goes to, among the usable ones other than skip; -1: none.
    int pick(int skip);
    bool usable(const Server& s) const;
    Server* owner(const ServerConnection& conn);

    boost::asio::any_io_executor ex_;
    BlockingHelper& helper_;
    std::function<void()> on_change_;
    ServerHealth* health_;
    std::string name_;
    uint64_t id_;
    UpstreamConfig cfg_;
    Balance balance_ = Balance::RoundRobin;
    PoolMode pool_mode_ = PoolMode::Transaction;
    std::string identity_;
    std::string data_identity_;
    std::string role_;
    std::vector<Server> servers_;
    // Pools of servers that left the list while clients still had connections out or waited:
    // those come back here, and the waiters are served, until none is left.
    std::vector<std::shared_ptr<ServerPool>> retired_;
    void retire_servers();
    std::size_t next_ = 0;  // round robin
    std::size_t clients_ = 0;
    int slot_ = -1;
    uint64_t statements_ = 0, cache_hits_ = 0;
    // target_session_attrs: which role the servers must have; libpq checks it again per connection.
    enum class Wants { Any, Primary, Standby, PreferStandby } wants_ = Wants::Any;
    std::map<std::map<std::string, std::string>, std::shared_ptr<const ReportedParameters>> reported_;
    mutable std::unordered_map<uint64_t, const ReportedParameters*> reported_by_version_;  // SessionSettings::version
    UpstreamFunctions functions_;
    UpstreamRelations relations_;
    bool writes_revoked_ = false;
};

using UpstreamPtr = std::shared_ptr<Upstream>;

}  // namespace rproxy
