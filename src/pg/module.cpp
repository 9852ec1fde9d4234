// Library entry: settings, shared memory and the listener workers. Kept tiny on purpose.
#include "pg/auth_generation.hpp"
#include "pg/connection_limits.hpp"
#include "pg/gucs.hpp"
#include "pg/result_cache.hpp"
#include "pg/server_table.hpp"
#include "pg/session_table.hpp"
#include "pg/statement_stats.hpp"
#include "pg/statement_metrics.hpp"
#include "pg/statement_hook.hpp"
#include "pg/worker_stats.hpp"
#include "pg/server_headers.hpp"

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

namespace {

bool loaded_via_preload = false;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void request_shmem() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    rproxy::pg::request_worker_stats_shmem();
    rproxy::pg::request_cache_shmem();
    rproxy::pg::request_connection_limits_shmem();
    rproxy::pg::request_session_table_shmem();
    rproxy::pg::request_auth_generation_shmem();
    rproxy::pg::request_server_table_shmem();
    rproxy::pg::request_statement_stats_shmem();
    rproxy::pg::request_statement_metrics_shmem();
}

void startup_shmem() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    rproxy::pg::init_worker_stats_shmem();
    rproxy::pg::init_cache_shmem();
    rproxy::pg::init_connection_limits_shmem();
    rproxy::pg::init_session_table_shmem();
    rproxy::pg::init_auth_generation_shmem();
    rproxy::pg::init_server_table_shmem();
    rproxy::pg::init_statement_stats_shmem();
    rproxy::pg::init_statement_metrics_shmem();
}

void register_workers() {
    for (int i = 0; i < rproxy::pg::guc_workers(); ++i) {
        BackgroundWorker worker;
        memset(&worker, 0, sizeof worker);
        worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
        worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
        worker.bgw_restart_time = 5;
        snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_rproxy");
        snprintf(worker.bgw_function_name, BGW_MAXLEN, "pg_rproxy_worker_main");
        snprintf(worker.bgw_name, BGW_MAXLEN, "pg_rproxy listener %d", i);
        snprintf(worker.bgw_type, BGW_MAXLEN, "pg_rproxy listener");
        worker.bgw_main_arg = Int32GetDatum(i);
        RegisterBackgroundWorker(&worker);
    }
}

}  // namespace

bool pg_rproxy_loaded_via_preload() { return loaded_via_preload; }

void _PG_init(void) {
    // Loaded later (CREATE EXTENSION without preloading): postmaster-level settings can no longer
    // be defined; the install script reports what to do instead.
    if (!process_shared_preload_libraries_in_progress) return;
    loaded_via_preload = true;
    rproxy::pg::define_gucs();
    rproxy::pg::define_statement_hook_guc();
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
    rproxy::pg::install_auth_change_hooks();
    register_workers();
}
