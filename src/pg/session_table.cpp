#include "pg/session_table.hpp"

#include <cstring>
#include <string>

#include "pg/gucs.hpp"
#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {

struct Entry {
    pg_atomic_uint32 changecount;  // odd while the owner writes
    bool in_use;
    int worker_pid;
    int32 backend_pid;
    TimestampTz connected_at;
    bool tls;
    char client_address[64];
    char role[NAMEDATALEN];
    char database[NAMEDATALEN];
    char upstream_user[NAMEDATALEN];
    char auth_method[32];
    char tls_version[16];
    char server_name[256];  // an SNI host name is at most 255 bytes
    char upstream[NAMEDATALEN];
    char server[256];
    int listen_port;
    char pinned[32];
};

struct TableShmem {
    int nslots;
    int per_slot;
    Entry entries[FLEXIBLE_ARRAY_MEMBER];
};

TableShmem* shm = nullptr;
int next_free = 0;  // where this worker's next search starts

int per_slot() {
    int workers = Max(guc_workers(), 1);
    return (guc_session_table_size() + workers - 1) / workers;
}

Size table_size() {
    return add_size(offsetof(TableShmem, entries), mul_size(sizeof(Entry), mul_size(per_slot(), Max(guc_workers(), 1))));
}

Entry* partition(int slot) {
    if (!shm || slot < 0 || slot >= shm->nslots || shm->per_slot == 0) return nullptr;
    return &shm->entries[static_cast<size_t>(slot) * shm->per_slot];
}

void copy_text(char* dst, size_t size, const std::string& src) { strlcpy(dst, src.c_str(), size); }

void begin_write(Entry* e) {
    pg_atomic_fetch_add_u32(&e->changecount, 1);  // a full barrier
}

void end_write(Entry* e) {
    pg_write_barrier();
    pg_atomic_fetch_add_u32(&e->changecount, 1);
}

}  // namespace

void request_session_table_shmem() { RequestAddinShmemSpace(table_size()); }

void init_session_table_shmem() {
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shm = static_cast<TableShmem*>(ShmemInitStruct("pg_rproxy sessions", table_size(), &found));
    if (!found) {
        memset(shm, 0, table_size());
        shm->nslots = Max(guc_workers(), 1);
        shm->per_slot = per_slot();
        for (size_t i = 0; i < static_cast<size_t>(shm->nslots) * shm->per_slot; i++)
            pg_atomic_init_u32(&shm->entries[i].changecount, 0);
    }
    LWLockRelease(AddinShmemInitLock);
}

void session_table_attach(int slot) {
    Entry* p = partition(slot);
    if (!p) return;
    for (int i = 0; i < shm->per_slot; i++) {
        if (!p[i].in_use) continue;
        begin_write(&p[i]);
        p[i].in_use = false;
        end_write(&p[i]);
    }
    next_free = 0;
}

int session_table_add(int slot, const SessionInfo& info) {
    Entry* p = partition(slot);
    if (!p) return -1;
    for (int n = 0; n < shm->per_slot; n++) {
        int i = (next_free + n) % shm->per_slot;
        Entry* e = &p[i];
        if (e->in_use) continue;
        begin_write(e);
        e->in_use = true;
        e->worker_pid = MyProcPid;
        e->backend_pid = info.backend_pid;
        e->connected_at = GetCurrentTimestamp();
        e->tls = info.tls;
        copy_text(e->client_address, sizeof e->client_address, info.client_address);
        copy_text(e->role, sizeof e->role, info.role);
        copy_text(e->database, sizeof e->database, info.database);
        copy_text(e->upstream_user, sizeof e->upstream_user, info.upstream_user);
        copy_text(e->auth_method, sizeof e->auth_method, info.auth_method);
        copy_text(e->tls_version, sizeof e->tls_version, info.tls_version);
        copy_text(e->server_name, sizeof e->server_name, info.server_name);
        copy_text(e->upstream, sizeof e->upstream, info.upstream);
        copy_text(e->server, sizeof e->server, info.server);
        e->listen_port = info.listen_port;
        e->pinned[0] = '\0';
        end_write(e);
        next_free = (i + 1) % shm->per_slot;
        return i;
    }
    return -1;
}

void session_table_remove(int slot, int handle) {
    Entry* p = partition(slot);
    if (!p || handle < 0 || handle >= shm->per_slot) return;
    begin_write(&p[handle]);
    p[handle].in_use = false;
    end_write(&p[handle]);
}

void session_table_set_pinned(int slot, int handle, const char* reason) {
    Entry* p = partition(slot);
    if (!p || handle < 0 || handle >= shm->per_slot) return;
    begin_write(&p[handle]);
    strlcpy(p[handle].pinned, reason, sizeof p[handle].pinned);
    end_write(&p[handle]);
}

int session_table_count_pinned() {
    if (!shm) return 0;
    int n = 0;
    for (int slot = 0; slot < shm->nslots; slot++) {
        Entry* p = partition(slot);
        for (int i = 0; p && i < shm->per_slot; i++) {
            // Two bytes without the change counter: a gauge may be off by one write under way.
            volatile const Entry* e = &p[i];
            if (e->in_use && e->pinned[0] != '\0') ++n;
        }
    }
    return n;
}

void session_table_scan(const std::function<void(const SessionRow&)>& visit) {
    if (!shm) return;
    for (int slot = 0; slot < shm->nslots; slot++) {
        Entry* p = partition(slot);
        for (int i = 0; p && i < shm->per_slot; i++) {
            Entry copy;
            // Retry while the owner is writing; the loop ends because a writer holds the entry
            // odd only for a few stores.
            for (;;) {
                uint32 before = pg_atomic_read_u32(&p[i].changecount);
                pg_read_barrier();
                memcpy(static_cast<void*>(&copy), &p[i], sizeof copy);
                pg_read_barrier();
                uint32 after = pg_atomic_read_u32(&p[i].changecount);
                if (before == after && (before & 1) == 0) break;
            }
            if (!copy.in_use) continue;
            SessionRow row;
            row.slot = slot;
            row.worker_pid = copy.worker_pid;
            row.connected_at = copy.connected_at;
            row.info.backend_pid = copy.backend_pid;
            row.info.client_address = copy.client_address;
            row.info.role = copy.role;
            row.info.database = copy.database;
            row.info.upstream_user = copy.upstream_user;
            row.info.auth_method = copy.auth_method;
            row.info.tls = copy.tls;
            row.info.tls_version = copy.tls_version;
            row.info.server_name = copy.server_name;
            row.info.upstream = copy.upstream;
            row.info.server = copy.server;
            row.info.listen_port = copy.listen_port;
            row.info.pinned = copy.pinned;
            visit(row);
        }
    }
}

}  // namespace rproxy::pg
