#include "pg/auth_generation.hpp"

#include "pg/server_headers.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_auth_changed);
}

namespace rproxy::pg {

namespace {

struct AuthGenerationShmem {
    pg_atomic_uint64 generation;
};

AuthGenerationShmem* shm = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;
// This transaction changed what authentication reads: the counter moves when it commits, so a
// worker never caches a state that is about to change.
bool changed_in_transaction = false;

bool changes_authentication(const Node* stmt) {
    switch (nodeTag(stmt)) {
        case T_CreateRoleStmt:
        case T_AlterRoleStmt:
        case T_DropRoleStmt:
        case T_GrantRoleStmt:
        case T_CreateExtensionStmt:
        case T_AlterExtensionStmt:
            return true;
        case T_RenameStmt:
            return reinterpret_cast<const RenameStmt*>(stmt)->renameType == OBJECT_ROLE;
        case T_DropStmt:
            return reinterpret_cast<const DropStmt*>(stmt)->removeType == OBJECT_EXTENSION;
        case T_TransactionStmt:
            // A prepared transaction may hold any of the above; its commit is where it takes effect.
            return reinterpret_cast<const TransactionStmt*>(stmt)->kind == TRANS_STMT_COMMIT_PREPARED;
        default:
            return false;
    }
}

// Plain C frame: standard_ProcessUtility may longjmp through it, and no C++ object lives here.
void process_utility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                     ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
    bool watched = changes_authentication(pstmt->utilityStmt);
    if (prev_process_utility)
        prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    if (watched) changed_in_transaction = true;
}

void on_transaction_end(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PREPARE:  // a prepared one may commit later: caches are dropped now and then
            if (changed_in_transaction && shm) pg_atomic_fetch_add_u64(&shm->generation, 1);
            changed_in_transaction = false;
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            changed_in_transaction = false;
            break;
        default:
            break;
    }
}

}  // namespace

void request_auth_generation_shmem() { RequestAddinShmemSpace(MAXALIGN(sizeof(AuthGenerationShmem))); }

void init_auth_generation_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shm = static_cast<AuthGenerationShmem*>(ShmemInitStruct("pg_rproxy auth generation", sizeof(AuthGenerationShmem), &found));
    if (!found) pg_atomic_init_u64(&shm->generation, 1);
    LWLockRelease(AddinShmemInitLock);
}

void install_auth_change_hooks() {
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
    RegisterXactCallback(on_transaction_end, nullptr);
}

uint64_t auth_generation() { return shm ? pg_atomic_read_u64(&shm->generation) : 0; }

void note_auth_change() { changed_in_transaction = true; }

}  // namespace rproxy::pg

// Statement trigger on the rules table and the role mapping: AFTER ... FOR EACH STATEMENT.
extern "C" Datum pg_rproxy_auth_changed(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                                                    errmsg("pg_rproxy_auth_changed() must be called as a trigger")));
    rproxy::pg::note_auth_change();
    PG_RETURN_POINTER(nullptr);
}
