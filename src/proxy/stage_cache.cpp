// Stage "cache probe": the result cache's key for a statement, the lookup (a hit ends the
// statement), single flight (waiting for another client's fill of the same entry), and storing
// what a fill captured.
#include "proxy/statement_pipeline.hpp"
#include "core/relation_generations.hpp"
#include "proxy/cache_key.hpp"
#include "proxy/l2_cache.hpp"
#include "proxy/worker.hpp"

#include <charconv>

namespace asio = boost::asio;

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete for some coroutine
// shapes (a false positive: the frame's operator new and delete are a matching pair).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace rproxy {

std::optional<Uncacheable> StatementPipeline::why_uncacheable(const CacheHints& hints, const ParsedQuery& parsed,
                                                               const Verdict& verdict, std::size_t extra_size) {
    const CacheConfig& cfg = worker_.cache_config();
    if (!cfg.enabled) return Uncacheable::Disabled;
    if (hints.no_cache) return Uncacheable::Hint;
    if (pinned_ || tx_status_ != 'I') return session_dirty_ ? Uncacheable::SessionState : Uncacheable::InTransaction;
    if (session_dirty_ || verdict.session_state || parsed.temp_relation) return Uncacheable::SessionState;
    if (!verdict.cacheable) return Uncacheable::NotDeterministic;
    if (parsed.reads_catalog && !cfg.catalog_queries) return Uncacheable::CatalogQuery;
    // The key is stored with the result: a huge statement or parameter would fill the cache with
    // keys. pg_rproxy.cache_max_entry_size bounds key and result together.
    if (key_prefix().size() + parsed.normalized.size() + extra_size >= cfg.max_entry_size) return Uncacheable::TooLarge;
    // Each relation read has a freshness counter the entry keeps (and its upstream one).
    if (parsed.relations.size() >= kMaxGenerationBuckets) return Uncacheable::TooLarge;
    return std::nullopt;
}

const char* StatementPipeline::uncacheable_reason(const std::string& sql, const ParsedQuery& parsed,
                                                  const Verdict& verdict) {
    bool reads_only = !parsed.statements.empty();
    for (const auto& st : parsed.statements) reads_only = reads_only && st.kind == "SELECT";
    if (!reads_only) return "not_a_read";
    std::optional<Uncacheable> why = why_uncacheable(parse_cache_hints(sql), parsed, verdict, 0);
    return why ? uncacheable_name(*why) : "bypassed";
}

std::optional<CacheKey> StatementPipeline::cache_key_for(const std::string& sql, const ParsedQuery& parsed,
                                                     const Verdict& verdict, int* ttl_seconds, const std::string& extra,
                                                     const std::optional<ParameterHook>& hook) {
    caller_key_.clear();
    bool reads_only = !parsed.statements.empty();
    for (const auto& st : parsed.statements) reads_only = reads_only && st.kind == "SELECT";
    if (!reads_only) {
        uncacheable_why_ = "not_a_read";
        return std::nullopt;  // SET, SHOW, BEGIN...: nothing to cache, nothing to count
    }
    CacheHints hints = parse_cache_hints(sql);
    if (hook) {
        // The parameter is in extra already, so a caller key keys the entry too.
        if (hook->unknown_options) worker_.cache().count_l2(L2Counter::HookUnknownOptions, hook->unknown_options);
        if (hook->no_cache || hook->ttl_seconds == 0) hints.no_cache = true;
        if (hook->ttl_seconds) hints.ttl_seconds = hook->ttl_seconds;
    }
    if (std::optional<Uncacheable> why = why_uncacheable(hints, parsed, verdict, extra.size())) {
        worker_.cache().count_uncacheable(*why);
        uncacheable_why_ = uncacheable_name(*why);
        return std::nullopt;
    }
    const CacheConfig& cfg = worker_.cache_config();
    *ttl_seconds = hints.ttl_seconds.value_or(cfg.ttl_seconds) + worker_.ttl_jitter(cfg.ttl_jitter_seconds);
    if (hook) caller_key_ = hook->caller_key;
    return make_cache_key(key_prefix(), parsed.normalized, extra);
}

const std::string& StatementPipeline::key_prefix() {
    // The upstream identity changes only with a reload.
    if (key_prefix_.empty() || key_prefix_version_ != settings_.version() || key_prefix_reloads_ != worker_.reloads()) {
        key_prefix_ = cache_key_prefix(upstream().identity(), settings_);
        key_prefix_version_ = settings_.version();
        key_prefix_reloads_ = worker_.reloads();
    }
    return key_prefix_;
}

// What the result may take of an entry: the key is stored with it. The setting may have been lowered
// by a reload since the key was made: then nothing (the fill is abandoned as too large).
std::size_t StatementPipeline::capture_limit(const std::optional<CacheKey>& key) const {
    std::size_t max = worker_.cache_config().max_entry_size, used = key ? key->full.size() : 0;
    return max > used ? max - used : 0;
}

ProbeResult StatementPipeline::probe_cache_now(const CacheKey& key, std::string& out, std::optional<uint64_t>* fill) {
    uint64_t fill_id = 0;
    ProbeResult probe = worker_.cache().cache_probe(key, out, &fill_id, &hit_rows_);
    if (probe == ProbeResult::Claimed) *fill = fill_id;
    else if (probe == ProbeResult::Hit) upstream_->count_cache_hit();
    return probe;
}

// Someone else is running this very statement: wait for its result instead (single flight),
// polling shared memory with a short backoff, until it is there or the fill is given up.
asio::awaitable<ProbeResult> StatementPipeline::wait_for_fill(const CacheKey& key, std::string& out,
                                                          std::optional<uint64_t>* fill) {
    worker_.cache().count_coalesced();
    for (int polls = 0;; ++polls) {
        asio::steady_timer pause(io_.executor(), std::chrono::milliseconds(std::min(2 << std::min(polls, 4), 20)));
        boost::system::error_code ec;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        ProbeResult probe = probe_cache_now(key, out, fill);
        if (probe != ProbeResult::Wait) co_return probe;
    }
}

std::unique_ptr<Fill> StatementPipeline::make_fill(const CacheKey& key, uint64_t id, int ttl, const std::string& sql,
                                               const std::shared_ptr<const ParsedQuery>& parsed) {
    auto fill = std::make_unique<Fill>();
    fill->key = key;
    fill->id = id;
    fill->ttl = ttl;
    fill->sql = sql;
    fill->parsed = parsed;
    fill->capture.limit = capture_limit(key);
    fill->caller_key = std::move(caller_key_);
    caller_key_.clear();
    fill->generation_buckets = read_generation_buckets(*parsed);
    fill->generation_sum = worker_.cache().generation_sum(fill->generation_buckets);
    return fill;
}

CacheEntryMeta StatementPipeline::entry_meta(const Fill& f) const {
    CacheEntryMeta meta;
    meta.ttl_seconds = f.ttl;
    meta.role = upstream_->role();
    meta.statement = f.sql.size() > 1024 ? f.sql.substr(0, 1024) : f.sql;
    for (const auto& r : f.parsed->relations) meta.relations += (meta.relations.empty() ? "" : ",") + r;
    meta.caller_key = f.caller_key;
    meta.generation_buckets = f.generation_buckets;
    meta.generation_sum = f.generation_sum;
    return meta;
}

void StatementPipeline::finish_fill(Fill& f) {
    const Capture& capture = f.capture;
    if (f.complete && !capture.error && !capture.overflowed && tx_status_ == 'I') {
        CacheEntryMeta meta = entry_meta(f);
        meta.rows = capture.rows;
        // Not into Redis what the first level refused: a write it depends on may have committed since.
        if (worker_.cache().cache_store(f.key, f.id, capture.bytes, meta))
            worker_.second_level().store(f, capture.bytes, capture.rows, f.ttl);
        else
            worker_.second_level().abandon(f);
        return;
    }
    if (capture.overflowed) worker_.cache().count_uncacheable(Uncacheable::TooLarge);
    if (capture.error) worker_.cache().count_uncacheable(Uncacheable::Error);
    // Too large: do not make every later client wait for a fill that will never fit.
    worker_.cache().cache_abandon(f.key, f.id, capture.overflowed ? f.ttl : 1);
    worker_.second_level().abandon(f);
}

std::optional<ParameterHook> StatementPipeline::parameter_hook(const protocol::BindMessage& b) const {
    if (!worker_.cache_config().parameter_hooks || b.params.empty() || !b.params[0]) return std::nullopt;
    if (!b.param_formats.empty() && b.param_formats[0] != 0) return std::nullopt;  // a text value only
    return parse_parameter_hook(*b.params[0]);
}

bool StatementPipeline::l2_on() const { return worker_.second_level().on(); }

namespace {
// A statement_timeout value as PostgreSQL reads it (milliseconds by default); 0 when unset or odd.
std::chrono::milliseconds timeout_setting(const std::string* v) {
    if (!v) return std::chrono::milliseconds(0);
    long long n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || n <= 0) return std::chrono::milliseconds(0);
    n = std::min<long long>(n, 1000000000);  // beyond any wait here, and no overflow below
    std::string_view unit(end, static_cast<std::size_t>(v->data() + v->size() - end));
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (unit.empty() || unit == "ms") return std::chrono::milliseconds(n);
    if (unit == "s") return std::chrono::milliseconds(n * 1000);
    if (unit == "min") return std::chrono::milliseconds(n * 60000);
    if (unit == "h") return std::chrono::milliseconds(n * 3600000);
    return std::chrono::milliseconds(0);
}
}  // namespace

asio::awaitable<bool> StatementPipeline::fetch_second_level(Fill& fill, std::string& out, bool may_wait) {
    // Waiting for another gateway's fill is bounded by the statement's own timeout (and by the fill
    // lock's lifetime, 10 s, after which this client runs it itself).
    std::chrono::milliseconds limit = timeout_setting(settings_.get("statement_timeout"));
    if (limit.count() == 0) limit = upstream().config().statement_timeout;
    if (limit.count() == 0 || limit > std::chrono::milliseconds(10000)) limit = std::chrono::milliseconds(10000);
    if (!may_wait) limit = std::chrono::milliseconds(0);
    std::vector<std::string> relations(fill.parsed->relations.begin(), fill.parsed->relations.end());
    bool hit = co_await worker_.second_level().fetch(fill, relations, out, &hit_rows_, entry_meta(fill), limit);
    if (hit) upstream_->count_cache_hit();
    co_return hit;
}

asio::awaitable<ProbeResult> StatementPipeline::probe_further(const CacheKey& key, std::string& out, ProbeResult first,
                                                              std::optional<uint64_t>& id, std::unique_ptr<Fill>& fill,
                                                              int ttl, const std::string& sql,
                                                              const std::shared_ptr<const ParsedQuery>& parsed) {
    ProbeResult result = first;
    if (result == ProbeResult::Wait) result = co_await wait_for_fill(key, out, &id);
    if (id) fill = make_fill(key, *id, ttl, sql, parsed);
    if (result == ProbeResult::Claimed && fill && l2_on() && co_await fetch_second_level(*fill, out)) {
        fill.reset();  // the first level keeps the second's result under this fill's claim
        result = ProbeResult::Hit;
    }
    co_return result;
}

}  // namespace rproxy
