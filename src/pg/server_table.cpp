#include "pg/server_table.hpp"

#include <algorithm>
#include <cstring>

#include "pg/gucs.hpp"
#include "pg/server_headers.hpp"

extern "C" {
#include "storage/spin.h"
}

namespace rproxy::pg {

namespace {

constexpr int kMaxServers = 256;
// Every worker publishes its servers at least every second (HealthChecker::tick).
constexpr TimestampTz kShownUnpublished = 3 * USECS_PER_SEC;

struct Slot {
    slock_t lock;  // the texts and the check result
    bool in_use;
    char upstream[NAMEDATALEN];
    char host[256];
    char port[16];
    pg_atomic_uint32 healthy;  // read without the lock on every acquire
    pg_atomic_uint32 role;
    pg_atomic_uint64 next_check;  // TimestampTz: whoever moves it forward checks
    bool checked;
    TimestampTz last_check;
    char last_error[256];
    int64 replay_lag_ms;
    pg_atomic_uint64 errors;  // failed checks and connection attempts, for the metrics endpoint
    pg_atomic_uint64 registered;  // TimestampTz: until its worker's next tick publishes it, a new server is shown
};

struct Counts {
    pg_atomic_uint32 present;  // the worker's configuration has this server (as of its last tick)
    pg_atomic_uint32 busy, idle, clients;
    pg_atomic_uint64 statements, cache_hits;  // cumulative, as the worker sums them
};

struct TableShmem {
    slock_t lock;  // slot registration
    int nworkers;
    Slot slots[kMaxServers];
    Counts counts[FLEXIBLE_ARRAY_MEMBER];  // nworkers * kMaxServers
};

TableShmem* shm = nullptr;

Size table_size() {
    return add_size(offsetof(TableShmem, counts), mul_size(sizeof(Counts), mul_size(Max(guc_workers(), 1), kMaxServers)));
}

// Cut at a character boundary (UTF-8), as the view shows it.
void copy_text(char* dst, std::size_t size, const std::string& s) {
    std::size_t n = std::min(s.size(), size - 1);
    while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    memcpy(dst, s.data(), n);
    dst[n] = '\0';
}

Slot* slot_at(int i) { return shm && i >= 0 && i < kMaxServers && shm->slots[i].in_use ? &shm->slots[i] : nullptr; }

}  // namespace

void request_server_table_shmem() { RequestAddinShmemSpace(table_size()); }

void init_server_table_shmem() {
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shm = static_cast<TableShmem*>(ShmemInitStruct("pg_rproxy servers", table_size(), &found));
    if (!found) {
        memset(static_cast<void*>(shm), 0, table_size());
        SpinLockInit(&shm->lock);
        shm->nworkers = Max(guc_workers(), 1);
        for (auto& s : shm->slots) {
            SpinLockInit(&s.lock);
            pg_atomic_init_u32(&s.healthy, 1);
            pg_atomic_init_u32(&s.role, 0);
            pg_atomic_init_u64(&s.next_check, 0);
            pg_atomic_init_u64(&s.errors, 0);
            pg_atomic_init_u64(&s.registered, 0);
        }
        for (int i = 0; i < shm->nworkers * kMaxServers; ++i) {
            pg_atomic_init_u32(&shm->counts[i].busy, 0);
            pg_atomic_init_u32(&shm->counts[i].idle, 0);
            pg_atomic_init_u32(&shm->counts[i].clients, 0);
            pg_atomic_init_u64(&shm->counts[i].statements, 0);
            pg_atomic_init_u64(&shm->counts[i].cache_hits, 0);
            pg_atomic_init_u32(&shm->counts[i].present, 0);
        }
    }
    LWLockRelease(AddinShmemInitLock);
}

int server_table_slot(const std::string& upstream, const std::string& host, const std::string& port) {
    if (!shm) return -1;
    // Compared as stored: cut to the slot's sizes (a long router name must find its own slot).
    char want_upstream[NAMEDATALEN], want_host[256], want_port[16];
    copy_text(want_upstream, sizeof want_upstream, upstream);
    copy_text(want_host, sizeof want_host, host);
    copy_text(want_port, sizeof want_port, port);
    int found = -1;
    TimestampTz now = GetCurrentTimestamp();
    SpinLockAcquire(&shm->lock);
    for (int i = 0; i < kMaxServers && found < 0; ++i) {
        Slot& s = shm->slots[i];
        if (s.in_use && strcmp(s.upstream, want_upstream) == 0 && strcmp(s.host, want_host) == 0 &&
            strcmp(s.port, want_port) == 0) {
            pg_atomic_write_u64(&s.registered, static_cast<uint64>(now));  // in use again: shown until a tick says otherwise
            found = i;
        }
    }
    for (int i = 0; i < kMaxServers && found < 0; ++i) {
        Slot& s = shm->slots[i];
        if (s.in_use) continue;
        memcpy(s.upstream, want_upstream, sizeof s.upstream);
        memcpy(s.host, want_host, sizeof s.host);
        memcpy(s.port, want_port, sizeof s.port);
        s.checked = false;
        s.last_error[0] = '\0';
        s.replay_lag_ms = -1;
        pg_atomic_write_u32(&s.healthy, 1);
        pg_atomic_write_u32(&s.role, 0);
        pg_atomic_write_u64(&s.next_check, 0);
        pg_atomic_write_u64(&s.errors, 0);
        pg_atomic_write_u64(&s.registered, static_cast<uint64>(now));
        s.in_use = true;
        found = i;
    }
    SpinLockRelease(&shm->lock);
    return found;
}

ServerState server_table_state(int slot) {
    ServerState st;
    if (Slot* s = slot_at(slot)) {
        st.healthy = pg_atomic_read_u32(&s->healthy) != 0;
        st.role = static_cast<ServerRole>(pg_atomic_read_u32(&s->role));
    }
    return st;
}

bool server_table_claim_check(int slot, std::chrono::milliseconds interval) {
    Slot* s = slot_at(slot);
    if (!s) return false;
    uint64 next = pg_atomic_read_u64(&s->next_check);
    TimestampTz now = GetCurrentTimestamp();
    if (static_cast<int64>(next) > now) return false;
    uint64 expected = next;
    return pg_atomic_compare_exchange_u64(&s->next_check, &expected,
                                          static_cast<uint64>(now + interval.count() * 1000));
}

void server_table_report(int slot, const ServerCheck& check) {
    Slot* s = slot_at(slot);
    if (!s) return;
    SpinLockAcquire(&s->lock);
    s->checked = true;
    s->last_check = GetCurrentTimestamp();
    copy_text(s->last_error, sizeof s->last_error, check.error);
    s->replay_lag_ms = check.replay_lag_ms;
    SpinLockRelease(&s->lock);
    pg_atomic_write_u32(&s->role, static_cast<uint32>(check.role));
    pg_atomic_write_u32(&s->healthy, check.healthy ? 1 : 0);
    if (!check.healthy) pg_atomic_fetch_add_u64(&s->errors, 1);  // any worker may report: a locked add
}

void server_table_publish(int worker_slot, const std::vector<ServerCounts>& counts) {
    if (!shm || worker_slot < 0 || worker_slot >= shm->nworkers) return;
    Counts* row = &shm->counts[worker_slot * kMaxServers];
    bool seen[kMaxServers] = {};
    for (const auto& c : counts) {
        if (c.slot < 0 || c.slot >= kMaxServers) continue;
        // Several upstreams of a worker (per database and role) may share a server's slot.
        uint32 busy = seen[c.slot] ? pg_atomic_read_u32(&row[c.slot].busy) : 0;
        uint32 idle = seen[c.slot] ? pg_atomic_read_u32(&row[c.slot].idle) : 0;
        uint32 clients = seen[c.slot] ? pg_atomic_read_u32(&row[c.slot].clients) : 0;
        pg_atomic_write_u32(&row[c.slot].busy, busy + c.busy);
        pg_atomic_write_u32(&row[c.slot].idle, idle + c.idle);
        pg_atomic_write_u32(&row[c.slot].clients, clients + c.clients);
        uint64 statements = seen[c.slot] ? pg_atomic_read_u64(&row[c.slot].statements) : 0;
        uint64 hits = seen[c.slot] ? pg_atomic_read_u64(&row[c.slot].cache_hits) : 0;
        pg_atomic_write_u64(&row[c.slot].statements, statements + c.statements);
        pg_atomic_write_u64(&row[c.slot].cache_hits, hits + c.cache_hits);
        pg_atomic_write_u32(&row[c.slot].present, 1);
        seen[c.slot] = true;
    }
    for (int i = 0; i < kMaxServers; ++i)
        if (!seen[i]) {
            pg_atomic_write_u32(&row[i].present, 0);
            pg_atomic_write_u32(&row[i].busy, 0);
            pg_atomic_write_u32(&row[i].idle, 0);
            pg_atomic_write_u32(&row[i].clients, 0);
            pg_atomic_write_u64(&row[i].statements, 0);
            pg_atomic_write_u64(&row[i].cache_hits, 0);
        }
}

void server_table_scan(const std::function<void(const ServerRow&)>& visit) {
    if (!shm) return;
    for (int i = 0; i < kMaxServers; ++i) {
        Slot* s = &shm->slots[i];
        if (!s->in_use) continue;
        ServerRow row;
        char upstream[NAMEDATALEN], host[256], port[16], error[256];
        SpinLockAcquire(&s->lock);
        memcpy(upstream, s->upstream, sizeof upstream);
        memcpy(host, s->host, sizeof host);
        memcpy(port, s->port, sizeof port);
        memcpy(error, s->last_error, sizeof error);
        row.checked = s->checked;
        row.last_check = s->last_check;
        row.check.replay_lag_ms = s->replay_lag_ms;
        SpinLockRelease(&s->lock);
        TimestampTz registered = static_cast<TimestampTz>(pg_atomic_read_u64(&s->registered));
        row.upstream = upstream;
        row.host = host;
        row.port = port;
        row.check.error = error;
        row.check.healthy = pg_atomic_read_u32(&s->healthy) != 0;
        row.check.role = static_cast<ServerRole>(pg_atomic_read_u32(&s->role));
        row.errors = pg_atomic_read_u64(&s->errors);
        bool present = false;
        for (int w = 0; w < shm->nworkers; ++w) {
            Counts* c = &shm->counts[w * kMaxServers + i];
            present = present || pg_atomic_read_u32(&c->present) != 0;
            row.busy += pg_atomic_read_u32(&c->busy);
            row.idle += pg_atomic_read_u32(&c->idle);
            row.clients += pg_atomic_read_u32(&c->clients);
            row.statements += pg_atomic_read_u64(&c->statements);
            row.cache_hits += pg_atomic_read_u64(&c->cache_hits);
        }
        // A server no worker's configuration names any more (its upstream row was changed or
        // dropped) is not shown: its last health would be stale forever. An upstream's own row
        // (host "") keeps its cumulative statistics.
        if (!present && host[0] != '\0' &&
            GetCurrentTimestamp() - registered > kShownUnpublished)
            continue;
        visit(row);
    }
}

}  // namespace rproxy::pg
