#include "pg/redis_invalidation.hpp"

#include <hiredis/hiredis.h>

#include <vector>

#include "core/redis_scripts.hpp"
#include "core/redis_url.hpp"
#include "core/relation_generations.hpp"
#include "pg/gucs.hpp"

namespace rproxy::pg {
namespace rs = rproxy::redis_scripts;

namespace {

// nullptr and *error on failure; the reply otherwise (freed by the caller).
redisReply* command(redisContext* c, const std::vector<std::string>& args, std::string* error) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    if (!r) {
        *error = c->errstr[0] ? c->errstr : "no answer";
        return nullptr;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        *error = std::string(r->str, r->len);
        freeReplyObject(r);
        return nullptr;
    }
    return r;
}

// Runs one invalidation script; what went wrong, or "" when it ran.
std::string run(const CacheConfig& cfg, const RedisEndpoint& ep, std::string_view script, const std::vector<std::string>& keys,
                const std::vector<std::string>& argv) {
    struct timeval tv;
    long ms = std::max(cfg.redis_timeout_ms, 1000);  // a backend may wait longer than a statement on the loop
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    redisContext* c = ep.socket_path.empty() ? redisConnectWithTimeout(ep.host.c_str(), ep.port, tv)
                                             : redisConnectUnixWithTimeout(ep.socket_path.c_str(), tv);
    if (!c) return "out of memory";
    std::string error;
    if (c->err) error = c->errstr;
    if (error.empty()) redisSetTimeout(c, tv);
    std::vector<std::vector<std::string>> steps;
    if (!ep.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!ep.user.empty()) auth.push_back(ep.user);
        auth.push_back(ep.password);
        steps.push_back(auth);
    }
    if (ep.db) steps.push_back({"SELECT", std::to_string(ep.db)});
    std::vector<std::string> eval{"EVAL", std::string(script), std::to_string(keys.size())};
    eval.insert(eval.end(), keys.begin(), keys.end());
    eval.insert(eval.end(), argv.begin(), argv.end());
    steps.push_back(eval);
    for (const auto& step : steps) {
        if (!error.empty()) break;
        if (redisReply* r = command(c, step, &error)) freeReplyObject(r);
    }
    redisFree(c);
    return error;
}

std::string invalidate(std::string_view script, const std::vector<std::string>& keys, const std::vector<std::string>& argv) {
    CacheConfig cfg = cache_config();
    if (cfg.redis_url.empty()) return "";
    std::string error;
    std::optional<RedisEndpoint> ep = parse_redis_url(cfg.redis_url, &error);
    if (ep && !cfg.redis_password.empty()) ep->password = cfg.redis_password;
    if (ep) error = run(cfg, *ep, script, keys, argv);
    if (error.empty()) return "";
    return "pg_rproxy: the Redis cache at " + (ep ? ep->describe() : std::string("pg_rproxy.redis")) +
           " was not reached: " + error;
}

}  // namespace

std::string redis_invalidate_all() {
    CacheConfig cfg = cache_config();
    const std::string& p = cfg.redis_prefix;
    return invalidate(rs::kInvalidateMatching, {rs::version_all(p)},
               {rs::glob_prefix(p), rs::channel(p), cfg.gateway_id + " reset", "keys"});
}

std::string redis_invalidate_relation(const std::string& relation) {
    CacheConfig cfg = cache_config();
    const std::string& p = cfg.redis_prefix;
    std::string base(relation_base_name(relation));
    return invalidate(rs::kInvalidate, {rs::version_name(p, base), rs::set_name(p, base)},
               {"1", rs::channel(p), cfg.gateway_id + " rel " + relation});
}

std::string redis_invalidate_caller_key(const std::string& prefix) {
    CacheConfig cfg = cache_config();
    const std::string& p = cfg.redis_prefix;
    return invalidate(rs::kInvalidateMatching, {rs::version_keys(p)},
               {rs::glob_prefix(rs::set_caller_key(p, prefix)), rs::channel(p), cfg.gateway_id + " key " + prefix, "sets"});
}

}  // namespace rproxy::pg
