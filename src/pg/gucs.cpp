#include "pg/gucs.hpp"

#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {
char* listen_addresses = nullptr;
int port = 5433;
int workers = 2;
char* upstream = nullptr;
int pool_size = 5;
int pool_timeout_ms = 30000;
char* database = nullptr;
}  // namespace

void define_gucs() {
    DefineCustomStringVariable("pg_rproxy.listen_addresses",
                               "Addresses the proxy listens on (comma separated, '*' for all).", nullptr,
                               &listen_addresses, "localhost", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.port", "TCP port the proxy listens on.", nullptr, &port, 5433, 1, 65535,
                            PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
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
    MarkGUCPrefixReserved("pg_rproxy");
}

int guc_workers() { return workers; }
const char* guc_database() { return database ? database : "postgres"; }

ListenConfig listen_config() {
    ListenConfig c;
    c.listen_addresses = listen_addresses ? listen_addresses : "localhost";
    c.port = port;
    return c;
}

UpstreamConfig upstream_config() {
    UpstreamConfig c;
    c.conninfo = upstream ? upstream : "";
    c.pool_size = pool_size;
    c.pool_timeout = std::chrono::milliseconds(pool_timeout_ms);
    return c;
}

}  // namespace rproxy::pg
