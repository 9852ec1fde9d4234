#include "core/redis_scripts.hpp"

#include <charconv>

namespace rproxy::redis_scripts {

const std::string_view kLookup = R"lua(
local n = redis.call('STRLEN', KEYS[1])
if n > tonumber(ARGV[3]) then return {false, 2} end
if n > 0 or redis.call('EXISTS', KEYS[1]) == 1 then
  return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
end
local got = 0
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then got = 1 end
local out = {false, got}
for i = 3, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '0' end
return out
)lua";

const std::string_view kStore = R"lua(
local nv = tonumber(ARGV[4])
local mine = redis.call('GET', KEYS[2]) == ARGV[3]
for i = 1, nv do
  if (redis.call('GET', KEYS[2 + i]) or '0') ~= ARGV[4 + i] then
    if mine then redis.call('DEL', KEYS[2]) end
    return 0
  end
end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 3 + nv, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
if mine then redis.call('DEL', KEYS[2]) end
return 1
)lua";

const std::string_view kAbandon = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
)lua";

const std::string_view kInvalidate = R"lua(
local nv = tonumber(ARGV[1])
for i = 1, nv do redis.call('INCR', KEYS[i]) end
local n = 0
for i = nv + 1, #KEYS do
  local m = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #m do n = n + redis.call('DEL', m[j]) end
  redis.call('DEL', KEYS[i])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return n
)lua";

const std::string_view kInvalidateMatching = R"lua(
redis.call('INCR', KEYS[1])
local n = 0
local cursor = '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    if k ~= KEYS[1] and string.sub(k, -5) ~= 'v:all' then
      if ARGV[4] == 'sets' then
        local m = redis.call('SMEMBERS', k)
        for j = 1, #m do n = n + redis.call('DEL', m[j]) end
        redis.call('DEL', k)
      else
        n = n + redis.call('DEL', k)
      end
    end
  end
until cursor == '0'
redis.call('PUBLISH', ARGV[2], ARGV[3])
return n
)lua";

std::string version_all(std::string_view prefix) { return std::string(prefix) + "v:all"; }
std::string version_keys(std::string_view prefix) { return std::string(prefix) + "v:keys"; }
std::string version_bucket(std::string_view prefix, uint32_t bucket) {
    return std::string(prefix) + "v:b:" + std::to_string(bucket);
}
std::string version_name(std::string_view prefix, std::string_view base_name) {
    return std::string(prefix) + "v:n:" + std::string(base_name);
}
std::string set_bucket(std::string_view prefix, uint32_t bucket) {
    return std::string(prefix) + "r:b:" + std::to_string(bucket);
}
std::string set_name(std::string_view prefix, std::string_view base_name) {
    return std::string(prefix) + "r:n:" + std::string(base_name);
}
std::string set_caller_key(std::string_view prefix, std::string_view key) {
    return std::string(prefix) + "k:" + std::string(key);
}
std::string lock_key(std::string_view entry_key, std::string_view prefix) {
    // e:<hash> -> l:<hash>
    return std::string(prefix) + "l:" + std::string(entry_key.substr(prefix.size() + 2));
}
std::string channel(std::string_view prefix) { return std::string(prefix) + "invalidate"; }

std::string glob_prefix(std::string_view s) {
    std::string g;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') g += '\\';
        g += c;
    }
    return g + "*";
}

Invalidation parse_invalidation(std::string_view m) {
    Invalidation inv;
    std::size_t sp = m.find(' ');
    if (sp == std::string_view::npos) return inv;
    inv.origin = std::string(m.substr(0, sp));
    m = m.substr(sp + 1);
    sp = m.find(' ');
    std::string_view kind = m.substr(0, sp);
    std::string_view arg = sp == std::string_view::npos ? std::string_view() : m.substr(sp + 1);
    if (kind == "reset") inv.kind = Invalidation::Kind::Reset;
    else if (kind == "rel" && !arg.empty()) {
        inv.kind = Invalidation::Kind::Relation;
        inv.text = std::string(arg);
    } else if (kind == "key") {
        inv.kind = Invalidation::Kind::CallerKey;
        inv.text = std::string(arg);
    } else if (kind == "buckets") {
        while (!arg.empty()) {
            std::size_t next = arg.find(' ');
            std::string_view n = arg.substr(0, next);
            uint32_t b = 0;
            auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), b);
            if (ec != std::errc() || end != n.data() + n.size()) return Invalidation{};
            inv.buckets.push_back(b);
            arg = next == std::string_view::npos ? std::string_view() : arg.substr(next + 1);
        }
        inv.kind = Invalidation::Kind::Buckets;
    }
    return inv;
}

}  // namespace rproxy::redis_scripts
