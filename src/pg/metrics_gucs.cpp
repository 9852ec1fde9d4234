// pg_rproxy.metrics_*: the Prometheus endpoint's settings.
#include "core/cidr.hpp"
#include "core/text_lists.hpp"
#include "pg/gucs.hpp"
#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {
int metrics_port = 0;
char* metrics_listen_addresses = nullptr;
char* metrics_user = nullptr;
char* metrics_password_file = nullptr;
char* metrics_allowed_addresses = nullptr;

bool check_allowed_addresses(char** newval, void**, GucSource) {
    for (const std::string& cidr : split_names(*newval ? *newval : "")) {
        if (!valid_cidr(cidr)) {
            GUC_check_errdetail("\"%s\" is not an address or CIDR block.", cidr.c_str());
            return false;
        }
    }
    return true;
}
}  // namespace

void define_metrics_gucs() {
    DefineCustomIntVariable("pg_rproxy.metrics_port", "TCP port of the Prometheus endpoint (GET /metrics).",
                            "0 turns it off. The first listener worker serves it.", &metrics_port, 0, 0, 65535,
                            PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.metrics_listen_addresses",
                               "Addresses the Prometheus endpoint listens on (comma separated, '*' for all).", nullptr,
                               &metrics_listen_addresses, "localhost", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.metrics_user", "User name scrapers give (HTTP basic authentication).",
                               "Empty: no authentication.", &metrics_user, "", PGC_SIGHUP, 0, nullptr, nullptr,
                               nullptr);
    DefineCustomStringVariable("pg_rproxy.metrics_password_file",
                               "File whose first line is the password for pg_rproxy.metrics_user.",
                               "Relative to the data directory.", &metrics_password_file, "", PGC_SIGHUP,
                               GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.metrics_allowed_addresses",
                               "Client addresses or CIDR blocks that may scrape (comma separated).",
                               "Empty: any address.", &metrics_allowed_addresses, "", PGC_SIGHUP, 0,
                               check_allowed_addresses, nullptr, nullptr);
}

MetricsConfig metrics_config() {
    MetricsConfig c;
    c.port = metrics_port;
    c.listen_addresses = metrics_listen_addresses ? metrics_listen_addresses : "localhost";
    c.user = metrics_user ? metrics_user : "";
    c.password_file = metrics_password_file ? metrics_password_file : "";
    c.allowed_addresses = split_names(metrics_allowed_addresses ? metrics_allowed_addresses : "");
    return c;
}

}  // namespace rproxy::pg
