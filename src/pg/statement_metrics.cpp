#include "pg/statement_metrics.hpp"

#include <cstring>
#include <map>
#include <unordered_map>

#include "pg/gucs.hpp"
#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {

constexpr int kUpstreamNames = 64;  // per worker; the last one is "other"
constexpr char kOther[] = "other";

struct UpstreamLatency {
    pg_atomic_uint32 used;  // set after name is written; the name never changes afterwards
    char name[NAMEDATALEN];
    pg_atomic_uint64 counts[kLatencyBuckets + 1];
    pg_atomic_uint64 sum_us;
};

enum Bytes { ClientIn, ClientOut, UpstreamIn, UpstreamOut, kBytes };

struct SlotMetrics {
    pg_atomic_uint64 allowed, refused, hit, miss, uncacheable;
    pg_atomic_uint64 bytes[kBytes];
    UpstreamLatency upstreams[kUpstreamNames];
};

struct MetricsShmem {
    int nslots;
    SlotMetrics slots[FLEXIBLE_ARRAY_MEMBER];
};

MetricsShmem* shm = nullptr;

// This process's worker: its names' places, and its slot's byte totals from before it started.
std::unordered_map<std::string, int> places;
int used_places = 0;
uint64 bytes_base[kBytes] = {};

Size metrics_size(int n) { return add_size(offsetof(MetricsShmem, slots), mul_size(sizeof(SlotMetrics), Max(n, 1))); }

SlotMetrics* slot_at(int i) { return shm && i >= 0 && i < shm->nslots ? &shm->slots[i] : nullptr; }

// Only this worker writes its slot: a load and a store, where fetch_add would lock the bus.
inline void bump(pg_atomic_uint64* c, uint64 by = 1) { pg_atomic_write_u64(c, pg_atomic_read_u64(c) + by); }

int last_place = -1;  // most statements name the upstream the one before did: no hashing then
std::string last_upstream;

int place_of(SlotMetrics* s, const std::string& upstream) {
    if (last_place >= 0 && upstream == last_upstream) return last_place;
    auto it = places.find(upstream);
    if (it != places.end()) {
        last_place = it->second;
        last_upstream = upstream;
        return last_place;
    }
    std::string name = upstream.substr(0, NAMEDATALEN - 1);
    int i;
    if (used_places < kUpstreamNames - 1) {
        i = used_places++;
    } else {
        i = kUpstreamNames - 1;
        name = kOther;
    }
    UpstreamLatency& u = s->upstreams[i];
    if (!pg_atomic_read_u32(&u.used)) {
        strlcpy(u.name, name.c_str(), sizeof u.name);
        pg_write_barrier();
        pg_atomic_write_u32(&u.used, 1);
    }
    // Bounded too: names beyond the table all map to the last place.
    if (places.size() < 4 * kUpstreamNames) places.emplace(upstream, i);
    return i;
}

}  // namespace

void request_statement_metrics_shmem() { RequestAddinShmemSpace(metrics_size(guc_workers())); }

void init_statement_metrics_shmem() {
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shm = static_cast<MetricsShmem*>(ShmemInitStruct("pg_rproxy metrics", metrics_size(guc_workers()), &found));
    if (!found) {
        memset(static_cast<void*>(shm), 0, metrics_size(guc_workers()));
        shm->nslots = guc_workers();
        for (int i = 0; i < shm->nslots; ++i) {
            SlotMetrics& s = shm->slots[i];
            for (auto* c : {&s.allowed, &s.refused, &s.hit, &s.miss, &s.uncacheable}) pg_atomic_init_u64(c, 0);
            for (auto& b : s.bytes) pg_atomic_init_u64(&b, 0);
            for (auto& u : s.upstreams) {
                pg_atomic_init_u32(&u.used, 0);
                for (auto& c : u.counts) pg_atomic_init_u64(&c, 0);
                pg_atomic_init_u64(&u.sum_us, 0);
            }
        }
    }
    LWLockRelease(AddinShmemInitLock);
}

void statement_metrics_attach(int slot) {
    places.clear();
    last_place = -1;
    used_places = 0;
    SlotMetrics* s = slot_at(slot);
    if (!s) return;
    for (int b = 0; b < kBytes; ++b) bytes_base[b] = pg_atomic_read_u64(&s->bytes[b]);
    // A restarted worker goes on counting where its predecessor stopped, under the same names.
    for (int i = 0; i < kUpstreamNames - 1; ++i) {
        if (!pg_atomic_read_u32(&s->upstreams[i].used)) break;
        places.emplace(s->upstreams[i].name, i);
        used_places = i + 1;
    }
}

void statement_metrics_count(int slot, const StatementRecord& r, const std::string& upstream) {
    SlotMetrics* s = slot_at(slot);
    if (!s) return;
    if (r.refused) {
        bump(&s->refused);
        return;  // neither looked up in the cache nor sent upstream
    }
    bump(&s->allowed);
    bump(r.cache == CacheOutcome::Hit ? &s->hit : r.cache == CacheOutcome::Miss ? &s->miss : &s->uncacheable);
    UpstreamLatency& u = s->upstreams[place_of(s, upstream)];
    double ms = r.duration_ms > 0 ? r.duration_ms : 0;
    bump(&u.counts[latency_bucket(ms)]);
    bump(&u.sum_us, static_cast<uint64>(ms * 1000.0 + 0.5));
}

void statement_metrics_publish_bytes(int slot, const WorkerCounters& c) {
    SlotMetrics* s = slot_at(slot);
    if (!s) return;
    pg_atomic_write_u64(&s->bytes[ClientIn], bytes_base[ClientIn] + c.client_received_bytes);
    pg_atomic_write_u64(&s->bytes[ClientOut], bytes_base[ClientOut] + c.client_sent_bytes);
    pg_atomic_write_u64(&s->bytes[UpstreamIn], bytes_base[UpstreamIn] + c.upstream_received_bytes);
    pg_atomic_write_u64(&s->bytes[UpstreamOut], bytes_base[UpstreamOut] + c.upstream_sent_bytes);
}

void statement_metrics_read(MetricsSnapshot& out) {
    if (!shm) return;
    std::map<std::string, LatencyHistogram> by_name;
    for (int w = 0; w < shm->nslots; ++w) {
        SlotMetrics& s = shm->slots[w];
        out.statements_allowed += pg_atomic_read_u64(&s.allowed);
        out.statements_refused += pg_atomic_read_u64(&s.refused);
        out.cache_hit += pg_atomic_read_u64(&s.hit);
        out.cache_miss += pg_atomic_read_u64(&s.miss);
        out.cache_uncacheable += pg_atomic_read_u64(&s.uncacheable);
        out.client_received_bytes += pg_atomic_read_u64(&s.bytes[ClientIn]);
        out.client_sent_bytes += pg_atomic_read_u64(&s.bytes[ClientOut]);
        out.upstream_received_bytes += pg_atomic_read_u64(&s.bytes[UpstreamIn]);
        out.upstream_sent_bytes += pg_atomic_read_u64(&s.bytes[UpstreamOut]);
        for (auto& u : s.upstreams) {
            if (!pg_atomic_read_u32(&u.used)) continue;
            pg_read_barrier();
            char name[NAMEDATALEN];
            memcpy(name, u.name, sizeof name);
            name[NAMEDATALEN - 1] = '\0';
            LatencyHistogram& h = by_name[name];
            h.upstream = name;
            for (int b = 0; b <= kLatencyBuckets; ++b) h.counts[b] += pg_atomic_read_u64(&u.counts[b]);
            h.sum_seconds += static_cast<double>(pg_atomic_read_u64(&u.sum_us)) / 1e6;
        }
    }
    for (auto& [name, h] : by_name) out.latency.push_back(std::move(h));
}

}  // namespace rproxy::pg
