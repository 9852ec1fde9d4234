#include "pg/statement_stats.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/latency_histogram.hpp"
#include "pg/gucs.hpp"
#include "pg/pg_guard.hpp"
#include "pg/server_headers.hpp"

namespace rproxy::pg {

namespace {

constexpr int kTextMax = 1024;  // bytes of the normalised statement kept
constexpr int kNameMax = NAMEDATALEN;

struct Entry {
    pg_atomic_uint32 seq;  // odd while its worker writes it
    bool in_use;
    uint64 epoch;          // the reset epoch it was made in: older ones are not shown
    uint64 digest;
    uint64 calls, cache_hits, refusals, rows;
    double total_ms, max_ms;
    uint32 hist[kStatementLatencyBuckets];
    char upstream[kNameMax];
    char role[kNameMax];
    uint16 text_len;
    char text[kTextMax];
};

struct Partition {
    pg_atomic_uint64 evictions;
    int used;  // entries handed out so far (in_use or freed by eviction)
};

struct Shared {
    pg_atomic_uint64 epoch;  // pg_rproxy_statements_reset() moves it on
    int partitions;
    int per_partition;
};

Shared* shared = nullptr;

int per_partition() { return std::max(16, guc_statements_max() / std::max(1, guc_workers())); }

Size partition_size() {
    return add_size(MAXALIGN(sizeof(Partition)), mul_size(sizeof(Entry), per_partition()));
}

Size shared_size() { return add_size(MAXALIGN(sizeof(Shared)), mul_size(partition_size(), guc_workers())); }

Partition* partition(int i) {
    char* base = reinterpret_cast<char*>(shared) + MAXALIGN(sizeof(Shared));
    return reinterpret_cast<Partition*>(base + partition_size() * i);
}

Entry* entries(Partition* p) { return reinterpret_cast<Entry*>(reinterpret_cast<char*>(p) + MAXALIGN(sizeof(Partition))); }

void begin_write(Entry* e) {
    pg_atomic_fetch_add_u32(&e->seq, 1);
    pg_write_barrier();
}

void end_write(Entry* e) {
    pg_write_barrier();
    pg_atomic_fetch_add_u32(&e->seq, 1);
}

// A consistent copy of an entry its worker may be writing; false when it kept changing.
bool read_entry(const Entry* e, Entry* copy) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        uint32 before = pg_atomic_read_u32(const_cast<pg_atomic_uint32*>(&e->seq));
        if (before & 1) continue;
        pg_read_barrier();
        memcpy(static_cast<void*>(copy), e, sizeof(Entry));
        pg_read_barrier();
        if (pg_atomic_read_u32(const_cast<pg_atomic_uint32*>(&e->seq)) == before) return true;
    }
    return false;
}

void copy_name(char* dst, std::string_view src) {
    std::size_t n = std::min(src.size(), static_cast<std::size_t>(kNameMax - 1));
    memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

uint64 fnv1a(std::string_view s, uint64 h = 1469598103934665603ULL) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
}

// The worker's own view of its partition: where each key lives.
struct Local {
    int slot = -1;
    Partition* part = nullptr;
    uint64 epoch = 0;
    // key hash -> entries (several only when 64-bit hashes collide; no probing, so an eviction
    // never hides another key's entry)
    std::unordered_multimap<uint64, int> index;
    std::vector<int> free;                  // entries freed by eviction
};
Local local;

uint64 key_hash(uint64 digest, std::string_view upstream, std::string_view role) {
    return fnv1a(role, fnv1a(upstream, digest ^ 0x9e3779b97f4a7c15ULL));
}

bool entry_is(const Entry* e, uint64 digest, std::string_view upstream, std::string_view role) {
    return e->in_use && e->digest == digest && upstream.substr(0, kNameMax - 1) == e->upstream &&
           role.substr(0, kNameMax - 1) == e->role;
}

void forget_all() {
    Entry* es = entries(local.part);
    for (int i = 0; i < local.part->used; ++i) {
        if (!es[i].in_use) continue;
        begin_write(&es[i]);
        es[i].in_use = false;
        end_write(&es[i]);
    }
    local.part->used = 0;
    local.index.clear();
    local.free.clear();
}

// The least used tenth of the partition goes (at least one entry).
void evict() {
    Entry* es = entries(local.part);
    std::vector<std::pair<uint64, int>> usage;
    usage.reserve(local.part->used);
    for (int i = 0; i < local.part->used; ++i)
        if (es[i].in_use) usage.emplace_back(es[i].calls, i);
    if (usage.empty()) return;
    std::size_t n = std::max<std::size_t>(1, usage.size() / 10);
    std::nth_element(usage.begin(), usage.begin() + (n - 1), usage.end());
    std::vector<bool> gone(local.part->used, false);
    for (std::size_t k = 0; k < n; ++k) {
        Entry* e = &es[usage[k].second];
        begin_write(e);
        e->in_use = false;
        end_write(e);
        gone[usage[k].second] = true;
        local.free.push_back(usage[k].second);
    }
    for (auto it = local.index.begin(); it != local.index.end();) {
        if (gone[it->second]) it = local.index.erase(it);
        else ++it;
    }
    pg_atomic_fetch_add_u64(&local.part->evictions, n);
}

Entry* find_or_add(const StatementRecord& r, uint64 digest, std::string_view upstream, std::string_view role) {
    Entry* es = entries(local.part);
    uint64 h = key_hash(digest, upstream, role);
    auto [from, to] = local.index.equal_range(h);
    for (auto it = from; it != to; ++it)
        if (entry_is(&es[it->second], digest, upstream, role)) return &es[it->second];
    if (local.free.empty() && local.part->used >= shared->per_partition) evict();
    int i;
    if (!local.free.empty()) {
        i = local.free.back();
        local.free.pop_back();
    } else if (local.part->used < shared->per_partition) {
        i = local.part->used++;
    } else {
        return nullptr;
    }
    Entry* e = &es[i];
    begin_write(e);
    e->in_use = true;
    e->epoch = local.epoch;
    e->digest = digest;
    e->calls = e->cache_hits = e->refusals = e->rows = 0;
    e->total_ms = e->max_ms = 0;
    memset(e->hist, 0, sizeof e->hist);
    copy_name(e->upstream, upstream);
    copy_name(e->role, role);
    std::string_view text = r.normalized;
    std::size_t n = std::min(text.size(), static_cast<std::size_t>(kTextMax));
    // Cut at a character boundary: the view returns it as text.
    while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    memcpy(e->text, text.data(), n);
    e->text_len = static_cast<uint16>(n);
    end_write(e);
    local.index.emplace(h, i);
    return e;
}

}  // namespace

void request_statement_stats_shmem() { RequestAddinShmemSpace(shared_size()); }

void init_statement_stats_shmem() {
    bool found;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<Shared*>(ShmemInitStruct("pg_rproxy statements", shared_size(), &found));
    if (!found) {
        memset(static_cast<void*>(shared), 0, shared_size());
        pg_atomic_init_u64(&shared->epoch, 1);
        shared->partitions = guc_workers();
        shared->per_partition = per_partition();
        for (int p = 0; p < shared->partitions; ++p) {
            pg_atomic_init_u64(&partition(p)->evictions, 0);
            Entry* es = entries(partition(p));
            for (int i = 0; i < shared->per_partition; ++i) pg_atomic_init_u32(&es[i].seq, 0);
        }
    }
    LWLockRelease(AddinShmemInitLock);
}

void statement_stats_attach(int slot) {
    if (!shared || slot < 0 || slot >= shared->partitions) return;
    local = Local();
    local.slot = slot;
    local.part = partition(slot);
    local.epoch = pg_atomic_read_u64(&shared->epoch);
    // A restarted worker finds its entries where it left them.
    Entry* es = entries(local.part);
    for (int i = 0; i < local.part->used; ++i) {
        if (!es[i].in_use || es[i].epoch != local.epoch) {
            if (es[i].in_use) {
                begin_write(&es[i]);
                es[i].in_use = false;
                end_write(&es[i]);
            }
            local.free.push_back(i);
            continue;
        }
        uint64 h = key_hash(es[i].digest, es[i].upstream, es[i].role);
        local.index.emplace(h, i);
    }
}

void statement_stats_record(const StatementRecord& r, std::string_view upstream, std::string_view role) {
    if (!local.part) return;
    uint64 epoch = pg_atomic_read_u64(&shared->epoch);
    if (epoch != local.epoch) {
        forget_all();
        local.epoch = epoch;
    }
    uint64 digest = r.digest ? r.digest : fnv1a(r.normalized);
    Entry* e = find_or_add(r, digest, upstream, role);
    if (!e) return;
    begin_write(e);
    e->calls++;
    if (r.cache == CacheOutcome::Hit) e->cache_hits++;
    if (r.refused) e->refusals++;
    e->rows += r.rows;
    e->total_ms += r.duration_ms;
    e->max_ms = std::max(e->max_ms, r.duration_ms);
    e->hist[statement_latency_bucket(r.duration_ms)]++;
    end_write(e);
}

}  // namespace rproxy::pg

namespace {

struct Summed {
    std::string statement;
    uint64 calls = 0, cache_hits = 0, refusals = 0, rows = 0;
    double total_ms = 0, max_ms = 0;
    uint32_t hist[rproxy::kStatementLatencyBuckets] = {};
};

using Key = std::tuple<std::string, std::string, uint64>;

std::map<Key, Summed> sum_partitions() {
    using namespace rproxy::pg;
    std::map<Key, Summed> out;
    if (!shared) return out;
    uint64 epoch = pg_atomic_read_u64(&shared->epoch);
    Entry copy;
    for (int p = 0; p < shared->partitions; ++p) {
        Partition* part = partition(p);
        int used = std::min(part->used, shared->per_partition);
        Entry* es = entries(part);
        for (int i = 0; i < used; ++i) {
            if (!read_entry(&es[i], &copy) || !copy.in_use || copy.epoch != epoch) continue;
            Summed& s = out[Key(copy.upstream, copy.role, copy.digest)];
            if (s.statement.empty()) s.statement.assign(copy.text, std::min<int>(copy.text_len, kTextMax));
            s.calls += copy.calls;
            s.cache_hits += copy.cache_hits;
            s.refusals += copy.refusals;
            s.rows += copy.rows;
            s.total_ms += copy.total_ms;
            s.max_ms = std::max(s.max_ms, copy.max_ms);
            for (int b = 0; b < rproxy::kStatementLatencyBuckets; ++b) s.hist[b] += copy.hist[b];
        }
    }
    return out;
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_statement_list);
PG_FUNCTION_INFO_V1(pg_rproxy_statements_reset);
}

// pg_rproxy_statement_list() -> the rows of the pg_rproxy_statements view.
extern "C" Datum pg_rproxy_statement_list(PG_FUNCTION_ARGS) {
    using rproxy::pg::invoke_cpp;
    using rproxy::pg::pg_call;
    return invoke_cpp([&]() -> Datum {
        std::map<Key, Summed> rows = sum_partitions();
        pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
        for (const auto& [key, s] : rows) {
            char digest[17];
            snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(std::get<2>(key)));
            double p50 = rproxy::statement_latency_percentile(s.hist, 0.50, s.max_ms);
            double p99 = rproxy::statement_latency_percentile(s.hist, 0.99, s.max_ms);
            const std::string& upstream = std::get<0>(key);
            const std::string& role = std::get<1>(key);
            pg_call([&] {
                ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
                Datum values[13];
                bool nulls[13];
                memset(nulls, false, sizeof nulls);
                if (upstream.empty()) nulls[0] = true;
                else values[0] = PointerGetDatum(cstring_to_text_with_len(upstream.data(), upstream.size()));
                values[1] = PointerGetDatum(cstring_to_text_with_len(role.data(), role.size()));
                values[2] = CStringGetTextDatum(digest);
                values[3] = PointerGetDatum(cstring_to_text_with_len(s.statement.data(), s.statement.size()));
                values[4] = Int64GetDatum(static_cast<int64>(s.calls));
                values[5] = Int64GetDatum(static_cast<int64>(s.cache_hits));
                values[6] = Int64GetDatum(static_cast<int64>(s.refusals));
                values[7] = Int64GetDatum(static_cast<int64>(s.rows));
                values[8] = Float8GetDatum(s.total_ms);
                values[9] = Float8GetDatum(s.calls ? s.total_ms / static_cast<double>(s.calls) : 0);
                values[10] = Float8GetDatum(s.max_ms);
                values[11] = Float8GetDatum(p50);
                values[12] = Float8GetDatum(p99);
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            });
        }
        return Datum(0);
    });
}

// pg_rproxy_statements_reset() -> the number of statements forgotten. Each worker clears its own
// partition at its next statement; until then the view hides what came before.
extern "C" Datum pg_rproxy_statements_reset(PG_FUNCTION_ARGS) {
    using rproxy::pg::invoke_cpp;
    return invoke_cpp([&]() -> Datum {
        int64 n = static_cast<int64>(sum_partitions().size());
        if (rproxy::pg::shared) pg_atomic_fetch_add_u64(&rproxy::pg::shared->epoch, 1);
        return Int64GetDatum(n);
    });
}
