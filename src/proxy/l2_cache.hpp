// The second cache level: results in Redis, shared by every gateway that names the same Redis and
// prefix. The first level (shared memory) is asked first; on its miss the client that claimed the
// entry asks Redis (a hit is copied into the first level), else takes Redis's fill lock, so that
// concurrent misses on many gateways run once upstream. Resets and invalidations reach Redis and,
// through its channel, every other gateway's first level.
//
// Redis is never needed: while it is away, slow or refusing, statements go on with the first level
// and the upstream, and the failures are counted (pg_rproxy_cache_stats).
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <string>
#include <vector>

#include "core/cache_types.hpp"
#include "proxy/exchange.hpp"
#include "proxy/redis_connection.hpp"
#include "proxy/worker_host.hpp"

namespace rproxy {

class L2Cache {
public:
    // local: the first level itself (not CacheTiers), which the invalidations of others reach.
    L2Cache(boost::asio::io_context& io, BlockingHelper& helper, WorkerHost& host, ResultCacheStore& local);
    ~L2Cache() { *alive_ = false; }

    // subscriber: this worker listens to the invalidation channel for the whole gateway.
    void configure(const CacheConfig& cfg, bool subscriber);
    bool on() const { return data_.ready(); }

    // The first level missed and fill holds its claim. true: Redis had the result: it is appended to
    // out, *rows set, and the first level keeps it under meta (with what is left of its TTL).
    // false: run the statement (fill.l2 says how to store its result). Waits at most wait_limit for
    // another gateway's fill of the same entry. Redis is not asked while an invalidation of what
    // the statement reads has not reached it.
    boost::asio::awaitable<bool> fetch(Fill& fill, const std::vector<std::string>& relations, std::string& out,
                                       uint64_t* rows, CacheEntryMeta meta, std::chrono::milliseconds wait_limit);
    void store(const Fill& fill, const std::string& wire, uint64_t rows, int ttl_seconds);
    void abandon(const Fill& fill);

    // Writes committed through this gateway, a reset: in Redis, and published to the others.
    void invalidate_buckets(const std::vector<uint32_t>& buckets);
    void reset();

private:
    void on_invalidation(std::string_view message);
    // A reset Redis is owed (l2_reset_owed): sent once Redis answers again, by any worker.
    void pay_owed_reset();
    // Sends an invalidation; until Redis confirms it, the buckets are not read from Redis, and if
    // it fails a reset is owed.
    void send_invalidation(std::string_view script, std::vector<std::string> keys, std::vector<std::string> argv,
                           std::vector<uint32_t> buckets);
    bool paying_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for answers that come after this is gone

    WorkerHost& host_;
    ResultCacheStore& local_;
    CacheConfig cfg_;
    RedisConnection data_;
    RedisConnection events_;  // the subscription (a connection that subscribed can do nothing else)
};

// The cache as the pipeline sees it: the first level, with what must also reach the second.
class CacheTiers : public ResultCacheStore {
public:
    CacheTiers(ResultCacheStore& local, L2Cache& l2) : local_(local), l2_(l2) {}
    ProbeResult cache_probe(const CacheKey& key, std::string& out, uint64_t* fill_id, uint64_t* rows) override {
        return local_.cache_probe(key, out, fill_id, rows);
    }
    bool cache_store(const CacheKey& key, uint64_t fill_id, const std::string& wire, const CacheEntryMeta& meta) override {
        return local_.cache_store(key, fill_id, wire, meta);
    }
    void cache_abandon(const CacheKey& key, uint64_t fill_id, int bypass_seconds) override {
        local_.cache_abandon(key, fill_id, bypass_seconds);
    }
    uint64_t cache_reset() override {
        uint64_t n = local_.cache_reset();
        l2_.reset();
        return n;
    }
    void count_uncacheable(Uncacheable reason) override { local_.count_uncacheable(reason); }
    void count_coalesced() override { local_.count_coalesced(); }
    uint64_t generation_sum(const std::vector<uint32_t>& buckets) override { return local_.generation_sum(buckets); }
    void bump_generations(const std::vector<uint32_t>& buckets) override {
        local_.bump_generations(buckets);
        l2_.invalidate_buckets(buckets);
    }
    uint64_t invalidate_relation(const std::string& relation) override { return local_.invalidate_relation(relation); }
    uint64_t invalidate_caller_key(const std::string& prefix) override { return local_.invalidate_caller_key(prefix); }
    void count_l2(L2Counter c, uint64_t n) override { local_.count_l2(c, n); }
    void l2_pending(const std::vector<uint32_t>& buckets, int delta) override { local_.l2_pending(buckets, delta); }
    bool l2_blocked(const std::vector<uint32_t>& buckets) override { return local_.l2_blocked(buckets); }
    uint64_t l2_reset_owed() override { return local_.l2_reset_owed(); }
    void l2_owe_reset() override { local_.l2_owe_reset(); }
    void l2_reset_paid(uint64_t generation) override { local_.l2_reset_paid(generation); }

private:
    ResultCacheStore& local_;
    L2Cache& l2_;
};

}  // namespace rproxy
