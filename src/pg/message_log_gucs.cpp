// pg_rproxy.message_log*: the intercept log of every protocol message (proxy/message_log.hpp).
#include "core/text_lists.hpp"
#include "pg/gucs.hpp"

#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {
char* message_log = nullptr;
char* message_log_upstreams = nullptr;
int message_log_bytes = 64;
int message_log_size_kb = 100 * 1024;
int message_log_files = 5;
}  // namespace

void define_message_log_gucs() {
    DefineCustomStringVariable("pg_rproxy.message_log",
                               "File every protocol message through the proxy is logged to, one line each.",
                               "Empty turns it off. A relative path is relative to the data directory.", &message_log,
                               "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("pg_rproxy.message_log_upstreams",
                               "pg_rproxy_upstreams names whose clients the message log covers (comma separated).",
                               "Empty: every client. default names the clients of pg_rproxy.upstream.",
                               &message_log_upstreams, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.message_log_bytes", "How many bytes of each message the message log shows in hex.",
                            nullptr, &message_log_bytes, 64, 0, 65536, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.message_log_size", "Size at which the message log file is rotated.",
                            "0: never rotated.", &message_log_size_kb, 100 * 1024, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_KB,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable("pg_rproxy.message_log_files", "How many rotated message log files are kept.",
                            "file.1 is the newest; 0 keeps none.", &message_log_files, 5, 0, 1000, PGC_SIGHUP, 0,
                            nullptr, nullptr, nullptr);
}

MessageLogConfig message_log_config() {
    MessageLogConfig c;
    c.path = message_log ? message_log : "";
    c.upstreams = split_names(message_log_upstreams ? message_log_upstreams : "");
    c.bytes = message_log_bytes;
    c.rotate_bytes = static_cast<uint64_t>(message_log_size_kb) * 1024;
    c.keep_files = message_log_files;
    return c;
}

}  // namespace rproxy::pg
