#include "proxy/l2_cache.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "core/l2_value.hpp"
#include "core/redis_scripts.hpp"
#include "core/relation_generations.hpp"

namespace asio = boost::asio;
namespace rs = rproxy::redis_scripts;

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {
namespace {

// Another gateway's fill lock lasts this long: a filler that died frees the key within it.
constexpr int kLockMs = 10000;

uint64_t now_ms() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace

L2Cache::L2Cache(asio::io_context& io, BlockingHelper& helper, WorkerHost& host, ResultCacheStore& local)
    : host_(host),
      local_(local),
      data_(io, helper,
            [&host](bool warning, const std::string& m) { host.log(warning ? LogLevel::Warning : LogLevel::Log, m); },
            [&local] { local.count_l2(L2Counter::Errors, 1); }),
      events_(io, helper,
              [&host](bool warning, const std::string& m) { host.log(warning ? LogLevel::Warning : LogLevel::Debug, m); },
              [&local] { local.count_l2(L2Counter::Errors, 1); }) {}

void L2Cache::configure(const CacheConfig& cfg, bool subscriber) {
    bool channel_changed = cfg.redis_prefix != cfg_.redis_prefix;
    cfg_ = cfg;
    std::optional<RedisEndpoint> ep;
    if (!cfg.redis_url.empty()) {
        std::string error;
        ep = parse_redis_url(cfg.redis_url, &error);  // the setting's check refused anything else
        if (ep && !cfg.redis_password.empty()) ep->password = cfg.redis_password;
    }
    auto timeout = std::chrono::milliseconds(cfg.redis_timeout_ms);
    data_.configure(ep, timeout);
    if (!subscriber) return;
    if (channel_changed) events_.configure(std::nullopt, timeout);
    events_.subscribe(rs::channel(cfg.redis_prefix), [this](std::string_view m) { on_invalidation(m); },
                      [this] {
                          // Invalidations sent while nobody in this gateway listened were missed.
                          uint64_t n = local_.cache_reset();
                          if (n)
                              host_.log(LogLevel::Log, "pg_rproxy: listening to Redis invalidations again; dropped " +
                                                           std::to_string(n) + " shared-memory entries that may have missed some");
                      });
    events_.configure(ep, std::max(timeout, std::chrono::milliseconds(1000)));
}

asio::awaitable<bool> L2Cache::fetch(Fill& fill, const std::vector<std::string>& relations, std::string& out,
                                     uint64_t* rows, CacheEntryMeta meta, std::chrono::milliseconds wait_limit) {
    if (!data_.ready()) co_return false;
    if (local_.l2_blocked(fill.generation_buckets)) {
        pay_owed_reset();
        co_return false;
    }
    const std::string& prefix = cfg_.redis_prefix;
    Fill::L2& l2 = fill.l2;
    l2.entry = l2_entry_key(prefix, fill.key.h1, fill.key.h2);
    l2.lock = rs::lock_key(l2.entry, prefix);
    l2.token = cfg_.gateway_id + ":" + std::to_string(host_.slot()) + ":" + std::to_string(fill.id);
    l2.version_keys.clear();
    l2.sets.clear();
    l2.version_keys.push_back(rs::version_all(prefix));
    for (uint32_t b : fill.generation_buckets) {
        l2.version_keys.push_back(rs::version_bucket(prefix, b));
        l2.sets.push_back(rs::set_bucket(prefix, b));
    }
    for (const auto& r : relations) {
        std::string base(relation_base_name(r));
        if (std::find(l2.sets.begin(), l2.sets.end(), rs::set_name(prefix, base)) != l2.sets.end()) continue;
        l2.version_keys.push_back(rs::version_name(prefix, base));
        l2.sets.push_back(rs::set_name(prefix, base));
    }
    if (!fill.caller_key.empty()) {
        l2.version_keys.push_back(rs::version_keys(prefix));
        l2.sets.push_back(rs::set_caller_key(prefix, fill.caller_key));
    }
    std::vector<std::string> keys{l2.entry, l2.lock};
    keys.insert(keys.end(), l2.version_keys.begin(), l2.version_keys.end());
    auto deadline = std::chrono::steady_clock::now() + wait_limit;
    bool waited = false, dropped_bad = false;
    for (int polls = 0;; ++polls) {
        // (Arguments built before co_await: GCC 12 cannot keep braced lists in a coroutine frame.)
        std::vector<std::string> argv;
        argv.push_back(l2.token);
        argv.push_back(std::to_string(kLockMs));
        argv.push_back(std::to_string(cfg_.redis_max_entry_size + 64));
        std::optional<RedisReply> r = co_await data_.script(rs::kLookup, keys, std::move(argv));
        if (!r || r->type != RedisReply::Type::Array || r->elements.empty()) {
            // It may have taken the lock before the answer was lost: give it back.
            if (data_.ready()) data_.send_script(rs::kAbandon, {l2.lock}, {l2.token}, nullptr);
            co_return false;
        }
        if (r->elements[0].type == RedisReply::Type::String && r->elements.size() == 2 &&
            r->elements[1].type == RedisReply::Type::Integer) {
            const std::string& value = r->elements[0].str;
            // Redis's own TTL, not the wall clock of whichever gateway stored it.
            long long pttl = r->elements[1].integer;
            L2Entry e;
            L2Decode d = value.size() > cfg_.redis_max_entry_size + 64 ? L2Decode::Corrupt
                                                                        : decode_l2_value(value, fill.key.full, 0, &e);
            if (d == L2Decode::Ok && pttl <= 0) d = L2Decode::Expired;
            if (d == L2Decode::Ok) {
                local_.count_l2(L2Counter::Hits, 1);
                local_.count_l2(L2Counter::BytesRead, value.size());
                out.append(e.wire.data(), e.wire.size());
                *rows = e.rows;
                meta.rows = e.rows;
                meta.ttl_seconds = static_cast<int>(std::clamp<long long>((pttl + 999) / 1000, 1, std::max(fill.ttl, 1)));
                local_.cache_store(fill.key, fill.id, std::string(e.wire), meta);
                l2.active = false;
                co_return true;
            }
            if (d == L2Decode::Corrupt) {
                local_.count_l2(L2Counter::Corrupt, 1);
                host_.log(LogLevel::Log, "pg_rproxy: ignored a Redis cache value that does not check out (" + l2.entry + ")");
            }
            // Corrupt, expired, or another key's: deleted, then looked up again (this client may
            // then fill it).
            if (dropped_bad) co_return false;
            dropped_bad = true;
            std::vector<std::string> del;
            del.push_back("DEL");
            del.push_back(l2.entry);
            if (!co_await data_.call(std::move(del))) co_return false;
            continue;
        }
        if (r->elements.size() == 2 && r->elements[1].type == RedisReply::Type::Integer && r->elements[1].integer == 2) {
            // a value larger than pg_rproxy.redis_max_entry_size allows: not fetched
            local_.count_l2(L2Counter::Corrupt, 1);
            co_return false;
        }
        if (r->elements.size() != 2 + l2.version_keys.size()) co_return false;
        if (polls == 0) local_.count_l2(L2Counter::Misses, 1);
        l2.versions.clear();
        for (std::size_t i = 2; i < r->elements.size(); ++i) l2.versions.push_back(r->elements[i].str);
        l2.active = true;
        l2.owner = r->elements[1].type == RedisReply::Type::Integer && r->elements[1].integer == 1;
        if (l2.owner) co_return false;
        // Another gateway runs it: wait for its result, not beyond the statement's own timeout;
        // then run it too (and store under the versions just read).
        if (!waited) local_.count_l2(L2Counter::Waits, 1);
        waited = true;
        if (std::chrono::steady_clock::now() >= deadline) co_return false;
        asio::steady_timer pause(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(std::min(2 << std::min(polls, 4), 20)));
        boost::system::error_code ec;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

void L2Cache::store(const Fill& fill, const std::string& wire, uint64_t rows, int ttl_seconds) {
    const Fill::L2& l2 = fill.l2;
    if (!l2.active || !data_.ready()) return;
    if (local_.l2_blocked(fill.generation_buckets)) {
        abandon(fill);
        return;
    }
    if (fill.key.full.size() + wire.size() + 64 > cfg_.redis_max_entry_size) {
        abandon(fill);
        return;
    }
    uint64_t ttl_ms = static_cast<uint64_t>(std::max(ttl_seconds, 1)) * 1000;
    std::string value = encode_l2_value(fill.key.full, wire, rows, now_ms() + ttl_ms);
    std::vector<std::string> keys{l2.entry, l2.lock};
    keys.insert(keys.end(), l2.version_keys.begin(), l2.version_keys.end());
    keys.insert(keys.end(), l2.sets.begin(), l2.sets.end());
    std::vector<std::string> argv{std::move(value), std::to_string(ttl_ms), l2.token, std::to_string(l2.version_keys.size())};
    argv.insert(argv.end(), l2.versions.begin(), l2.versions.end());
    std::size_t bytes = argv[0].size();
    ResultCacheStore& local = local_;
    data_.send_script(rs::kStore, keys, argv, [&local, bytes](const redisReply* r) {
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            local.count_l2(L2Counter::Stores, 1);
            local.count_l2(L2Counter::BytesWritten, bytes);
        } else if (r && r->type == REDIS_REPLY_ERROR) {
            local.count_l2(L2Counter::Errors, 1);  // out of memory, most likely
        }
    });
}

void L2Cache::abandon(const Fill& fill) {
    if (!fill.l2.active || !fill.l2.owner || !data_.ready()) return;
    data_.send_script(rs::kAbandon, {fill.l2.lock}, {fill.l2.token}, nullptr);
}

void L2Cache::send_invalidation(std::string_view script, std::vector<std::string> keys, std::vector<std::string> argv,
                                std::vector<uint32_t> buckets) {
    if (!data_.ready()) {
        local_.count_l2(L2Counter::Errors, 1);
        local_.l2_owe_reset();  // paid once Redis answers again; until then nobody reads it
        return;
    }
    local_.l2_pending(buckets, +1);
    ResultCacheStore& local = local_;
    data_.send_script(script, keys, argv, [&local, buckets](const redisReply* r) {
        if (!r || r->type == REDIS_REPLY_ERROR) local.l2_owe_reset();  // before the buckets open again
        local.l2_pending(buckets, -1);
    });
}

void L2Cache::invalidate_buckets(const std::vector<uint32_t>& buckets) {
    if (cfg_.redis_url.empty() || buckets.empty()) return;
    std::vector<std::string> keys;
    std::string message = cfg_.gateway_id + " buckets";
    for (uint32_t b : buckets) {
        keys.push_back(rs::version_bucket(cfg_.redis_prefix, b));
        message += " " + std::to_string(b);
    }
    for (uint32_t b : buckets) keys.push_back(rs::set_bucket(cfg_.redis_prefix, b));
    send_invalidation(rs::kInvalidate, std::move(keys),
                      {std::to_string(buckets.size()), rs::channel(cfg_.redis_prefix), std::move(message)}, buckets);
}

void L2Cache::reset() {
    if (cfg_.redis_url.empty()) return;
    // Owed at once: no worker reads Redis until the reset is confirmed.
    local_.l2_owe_reset();
    pay_owed_reset();
}

void L2Cache::pay_owed_reset() {
    uint64_t owed = local_.l2_reset_owed();
    if (!owed || paying_ || !data_.ready()) return;
    paying_ = true;
    ResultCacheStore& local = local_;
    bool* paying = &paying_;
    auto alive = alive_;
    data_.send_script(rs::kInvalidateMatching, {rs::version_all(cfg_.redis_prefix)},
                      {rs::glob_prefix(cfg_.redis_prefix), rs::channel(cfg_.redis_prefix), cfg_.gateway_id + " reset", "keys"},
                      [&local, paying, alive, owed](const redisReply* r) {
                          if (r && r->type != REDIS_REPLY_ERROR) local.l2_reset_paid(owed);
                          if (*alive) *paying = false;
                      });
}

void L2Cache::on_invalidation(std::string_view message) {
    rs::Invalidation inv = rs::parse_invalidation(message);
    if (inv.origin == cfg_.gateway_id) return;  // this gateway acted when it sent it
    switch (inv.kind) {
        case rs::Invalidation::Kind::Reset: local_.cache_reset(); break;
        case rs::Invalidation::Kind::Relation: local_.invalidate_relation(inv.text); break;
        case rs::Invalidation::Kind::CallerKey: local_.invalidate_caller_key(inv.text); break;
        case rs::Invalidation::Kind::Buckets: local_.bump_generations(inv.buckets); break;
        case rs::Invalidation::Kind::Unknown: break;
    }
}

}  // namespace rproxy
