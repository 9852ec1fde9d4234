// pg_rproxy.* settings for client authentication, TLS toward clients and connection limits.
#include "pg/gucs.hpp"

#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {
int auth_failure_delay_ms = 200;
int authentication_timeout_ms = 60000;
int max_client_connections = 10000;
int connection_rate = 0;
int connection_burst = 0;
int max_message_size_kb = 16 * 1024;
bool ssl = false;
char* ssl_cert_file = nullptr;
char* ssl_key_file = nullptr;
char* ssl_ca_file = nullptr;
int ssl_min_protocol = 0;
char* ssl_ciphers = nullptr;

const struct config_enum_entry auth_method_options[] = {
    {"scram-sha-256", 0, false}, {"md5", 1, false}, {"password", 2, false}, {"trust", 3, false},
    {"reject", 4, false}, {"cert", 5, false}, {nullptr, 0, false}};
const char* const auth_method_names[] = {"scram-sha-256", "md5", "password", "trust", "reject", "cert"};
int auth_method_index = 0;

const struct config_enum_entry tls_version_options[] = {
    {"TLSv1.2", 0, false}, {"TLSv1.3", 1, false}, {nullptr, 0, false}};
}  // namespace

void define_security_gucs() {
    DefineCustomEnumVariable("pg_rproxy.auth_method",
                             "Authentication method when pg_rproxy_auth_rules is empty or not installed.", nullptr,
                             &auth_method_index, 0, auth_method_options, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.auth_failure_delay", "Pause before answering a failed authentication.",
                            nullptr, &auth_failure_delay_ms, 200, 0, 10000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("pg_rproxy.authentication_timeout",
                            "Time a client has to complete startup and authentication.", nullptr,
                            &authentication_timeout_ms, 60000, 100, 600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("pg_rproxy.max_client_connections", "Most client connections over all workers.",
                            "0 means no limit.", &max_client_connections, 10000, 0, 1000000, PGC_SIGHUP, 0, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.connection_rate",
                            "New connections per second allowed from one client address.", "0 turns the limit off.",
                            &connection_rate, 0, 0, 1000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.connection_burst",
                            "Connections a client address may open at once before the rate applies.",
                            "0 means the rate itself.", &connection_burst, 0, 0, 1000000, PGC_SIGHUP, 0, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.max_message_size", "Largest message a client may send.", nullptr,
                            &max_message_size_kb, 16 * 1024, 1, 1024 * 1024, PGC_SIGHUP, GUC_UNIT_KB, nullptr, nullptr,
                            nullptr);
    DefineCustomBoolVariable("pg_rproxy.ssl", "Accept TLS connections from clients.", nullptr, &ssl, false,
                             PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.ssl_cert_file", "Server certificate for client connections.", nullptr,
                               &ssl_cert_file, "server.crt", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.ssl_key_file", "Private key of the server certificate.", nullptr,
                               &ssl_key_file, "server.key", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.ssl_ca_file", "CA certificates that sign client certificates.", nullptr,
                               &ssl_ca_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomEnumVariable("pg_rproxy.ssl_min_protocol_version", "Oldest TLS version accepted from clients.",
                             nullptr, &ssl_min_protocol, 0, tls_version_options, PGC_SIGHUP, 0, nullptr, nullptr,
                             nullptr);
    DefineCustomStringVariable("pg_rproxy.ssl_ciphers", "TLS 1.2 cipher list offered to clients.", nullptr,
                               &ssl_ciphers, "HIGH:MEDIUM:+3DES:!aNULL", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
}

SecurityConfig security_config() {
    SecurityConfig c;
    c.auth_method = auth_method_names[auth_method_index];
    c.auth_failure_delay = std::chrono::milliseconds(auth_failure_delay_ms);
    c.authentication_timeout = std::chrono::milliseconds(authentication_timeout_ms);
    c.max_client_connections = max_client_connections;
    c.connection_rate = connection_rate;
    c.connection_burst = connection_burst;
    c.max_message_size = static_cast<std::size_t>(max_message_size_kb) * 1024;
    c.ssl = ssl;
    // Relative paths are relative to the data directory, the worker's working directory.
    c.ssl_cert_file = ssl_cert_file ? ssl_cert_file : "";
    c.ssl_key_file = ssl_key_file ? ssl_key_file : "";
    c.ssl_ca_file = ssl_ca_file ? ssl_ca_file : "";
    c.ssl_min_protocol_version = ssl_min_protocol == 1 ? "TLSv1.3" : "TLSv1.2";
    c.ssl_ciphers = ssl_ciphers ? ssl_ciphers : "";
    return c;
}

}  // namespace rproxy::pg
