#include "pg/gucs.hpp"

#include "core/text_lists.hpp"
#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {
char* listen_addresses = nullptr;
char* ports = nullptr;
char* router = nullptr;
int router_cache_ttl_ms = 10000;
int health_check_interval_ms = 5000;
int workers = 2;
char* upstream = nullptr;
int pool_size = 5;
int pool_timeout_ms = 30000;
char* database = nullptr;
char* allowed_functions = nullptr;
char* denied_functions = nullptr;
char* denied_settings = nullptr;
int unknown_functions = 0;
bool cache_enabled = true;
int cache_ttl = 900;
int cache_ttl_jitter = 0;
int cache_max_entries = 10000;
int session_table_size = 10000;
int cache_size_kb = 64 * 1024;
int cache_max_entry_size_kb = 1024;
bool cache_catalog_queries = false;
bool client_cache_reset = true;
int statement_timeout_ms = 0;
int idle_client_timeout_ms = 0;
int idle_in_transaction_timeout_ms = 0;

// Volatile (or stable) built-ins that cannot change data, another session or the server: time,
// randomness, identity, sizes and monitoring that BI tools and dashboards call.
constexpr const char* kDefaultAllowedFunctions =
    "random, clock_timestamp, timeofday, statement_timestamp, gen_random_uuid, pg_backend_pid, version, "
    "current_setting, pg_is_in_recovery, pg_sleep, pg_sleep_for, pg_sleep_until, pg_database_size, "
    "pg_relation_size, pg_table_size, pg_indexes_size, pg_total_relation_size, pg_tablespace_size, "
    "pg_jit_available, pg_notification_queue_usage, pg_current_wal_lsn, pg_current_wal_insert_lsn, "
    "pg_current_wal_flush_lsn, pg_last_wal_receive_lsn, pg_last_wal_replay_lsn, "
    "pg_last_xact_replay_timestamp, pg_is_wal_replay_paused, pg_get_wal_replay_pause_state, "
    "pg_blocking_pids, pg_safe_snapshot_blocking_pids, pg_lock_status, pg_partition_tree, "
    "pg_partition_ancestors, pg_sequence_last_value, currval, lastval, txid_status, pg_xact_status, "
    "pg_stat_have_stats, pg_stat_get_xact_numscans, pg_stat_get_xact_tuples_returned, "
    "pg_stat_get_xact_tuples_fetched, pg_stat_get_xact_tuples_inserted, pg_stat_get_xact_tuples_updated, "
    "pg_stat_get_xact_tuples_deleted, pg_stat_get_xact_tuples_hot_updated, pg_stat_get_xact_blocks_fetched, "
    "pg_stat_get_xact_blocks_hit, pg_stat_get_xact_function_calls, pg_stat_get_xact_function_total_time, "
    "pg_stat_get_xact_function_self_time, pg_collation_actual_version, pg_database_collation_actual_version";

bool check_ports(char** newval, void**, GucSource) {
    if (!*newval || parse_port_list(*newval).empty()) {
        GUC_check_errdetail("pg_rproxy.port must list TCP ports (1-65535) separated by commas, as in 5433,5434.");
        return false;
    }
    return true;
}

const struct config_enum_entry unknown_function_options[] = {
    {"reject", 0, false}, {"allow", 1, false}, {nullptr, 0, false}};
}  // namespace

void define_gucs() {
    DefineCustomStringVariable("pg_rproxy.listen_addresses",
                               "Addresses the proxy listens on (comma separated, '*' for all).", nullptr,
                               &listen_addresses, "localhost", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.port", "TCP ports the proxy listens on (comma separated).",
                               "Every worker listens on each; pg_rproxy_routes.listen_port matches the one a client used.",
                               &ports, "5433", PGC_POSTMASTER, 0, check_ports, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.router",
                               "Function (server_name text, database text, role text, client_address inet) "
                               "returning an upstream name or a conninfo, asked when no route decides.",
                               nullptr, &router, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.router_cache_ttl", "How long a worker keeps a router answer.", "0: ask every time.",
                            &router_cache_ttl_ms, 10000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.health_check_interval", "How often each upstream server is checked.", nullptr,
                            &health_check_interval_ms, 5000, 100, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("pg_rproxy.workers", "Number of listener worker processes sharing the port.",
                            "0 disables the proxy.", &workers, 2, 0, 64, PGC_POSTMASTER, 0, nullptr, nullptr,
                            nullptr);
    // Holds the upstream password: only superusers may read it.
    DefineCustomStringVariable("pg_rproxy.upstream", "libpq conninfo of the upstream server.", nullptr, &upstream,
                               "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.pool_size", "Upstream connections per worker.", nullptr, &pool_size, 5, 1,
                            10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.pool_timeout", "How long a client waits for a free upstream connection.",
                            nullptr, &pool_timeout_ms, 30000, 1, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
                            nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.database", "Local database the workers attach to for catalog access.",
                               nullptr, &database, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.allowed_functions",
                               "Volatile functions allowed by name (comma list, name or schema.name).", nullptr,
                               &allowed_functions, kDefaultAllowedFunctions, PGC_SIGHUP, 0, nullptr, nullptr,
                               nullptr);
    DefineCustomStringVariable("pg_rproxy.denied_functions", "Functions rejected whatever their volatility.",
                               nullptr, &denied_functions, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.denied_settings",
                               "Settings clients may not change (in addition to the read-only and role ones).",
                               // The gateway parses with standard strings: the upstream must too.
                               nullptr, &denied_settings, "standard_conforming_strings, backslash_quote",
                               PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable("pg_rproxy.unknown_functions",
                             "What to do with a function neither the gateway nor the upstream knows.", nullptr,
                             &unknown_functions, 0, unknown_function_options, PGC_SIGHUP, 0, nullptr, nullptr,
                             nullptr);
    DefineCustomBoolVariable("pg_rproxy.cache_enabled", "Serve repeated deterministic reads from the result cache.",
                             nullptr, &cache_enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.cache_ttl", "How long a cached result is served.", nullptr, &cache_ttl, 900, 1,
                            INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.cache_ttl_jitter", "Random extra lifetime (0..jitter) per cached result.",
                            nullptr, &cache_ttl_jitter, 0, 0, INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("pg_rproxy.cache_max_entries", "Most results the cache holds.", nullptr,
                            &cache_max_entries, 10000, 16, 10000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.cache_size", "Shared memory budget for cached results.", nullptr,
                            &cache_size_kb, 64 * 1024, 64, INT_MAX / 2, PGC_POSTMASTER, GUC_UNIT_KB, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("pg_rproxy.cache_max_entry_size", "Larger entries (key with statement and parameters, plus result) are streamed, not cached.", nullptr,
                            &cache_max_entry_size_kb, 1024, 1, INT_MAX / 2, PGC_SIGHUP, GUC_UNIT_KB, nullptr, nullptr,
                            nullptr);
    DefineCustomBoolVariable("pg_rproxy.cache_catalog_queries", "Cache queries that read pg_catalog / information_schema.",
                             nullptr, &cache_catalog_queries, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("pg_rproxy.client_cache_reset",
                             "Let clients of the proxy port run SELECT rustproxy_cache_reset() / pg_rproxy_cache_reset().",
                             nullptr, &client_cache_reset, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.statement_timeout", "statement_timeout set on every new upstream connection.",
                            "0 turns it off. Clients may still SET their own.", &statement_timeout_ms, 0, 0, INT_MAX,
                            PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.idle_client_timeout", "Close clients idle (outside a transaction) this long.",
                            "0 turns it off.", &idle_client_timeout_ms, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.idle_in_transaction_timeout",
                            "Close clients idle this long inside a transaction (the upstream rolls it back).",
                            "0 turns it off.", &idle_in_transaction_timeout_ms, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.session_table_size", "Most client sessions the pg_rproxy_sessions view shows.",
                            "Split evenly between the workers; clients beyond it are served but not shown.",
                            &session_table_size, 10000, 0, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    define_security_gucs();
    define_observe_gucs();
    define_metrics_gucs();
    define_message_log_gucs();
    define_redis_gucs();
    MarkGUCPrefixReserved("pg_rproxy");
}

int guc_workers() { return workers; }
const char* guc_database() { return database ? database : "postgres"; }

ListenConfig listen_config() {
    ListenConfig c;
    c.listen_addresses = listen_addresses ? listen_addresses : "localhost";
    c.ports = parse_port_list(ports ? ports : "5433");
    if (c.ports.empty()) c.ports = {5433};
    return c;
}

UpstreamConfig upstream_config() {
    UpstreamConfig c;
    c.conninfo = upstream ? upstream : "";
    c.pool_size = pool_size;
    c.pool_timeout = std::chrono::milliseconds(pool_timeout_ms);
    c.statement_timeout = std::chrono::milliseconds(statement_timeout_ms);
    c.idle_client_timeout = std::chrono::milliseconds(idle_client_timeout_ms);
    c.idle_in_transaction_timeout = std::chrono::milliseconds(idle_in_transaction_timeout_ms);
    return c;
}

RoutingConfig routing_config() {
    RoutingConfig c;
    c.router = router ? router : "";
    c.router_cache_ttl = std::chrono::milliseconds(router_cache_ttl_ms);
    c.health_check_interval = std::chrono::milliseconds(health_check_interval_ms);
    return c;
}

}  // namespace rproxy::pg

namespace rproxy::pg {

FirewallConfig firewall_config() {
    FirewallConfig c;
    c.allowed_functions = parse_name_list(allowed_functions ? allowed_functions : "");
    c.denied_functions = parse_name_list(denied_functions ? denied_functions : "");
    c.denied_settings = parse_name_list(denied_settings ? denied_settings : "");
    c.allow_unknown_functions = unknown_functions == 1;
    return c;
}

}  // namespace rproxy::pg

namespace rproxy::pg {

CacheConfig cache_config() {
    CacheConfig c;
    c.enabled = cache_enabled;
    c.ttl_seconds = cache_ttl;
    c.ttl_jitter_seconds = cache_ttl_jitter;
    c.max_entry_size = static_cast<std::size_t>(cache_max_entry_size_kb) * 1024;
    c.catalog_queries = cache_catalog_queries;
    c.client_cache_reset = client_cache_reset;
    fill_redis_config(c);
    return c;
}

int guc_cache_max_entries() { return cache_max_entries; }
int guc_session_table_size() { return session_table_size; }
uint64_t guc_cache_size() { return static_cast<uint64_t>(cache_size_kb) * 1024; }

}  // namespace rproxy::pg
