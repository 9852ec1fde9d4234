// What the second cache level keeps in Redis, and the Lua scripts that change it: each runs as one
// atomic step in Redis, so a fill can never be stored over an invalidation that passed it.
//
// Under the prefix (pg_rproxy.redis_prefix):
//   e:<32 hex>   an entry (core/l2_value)             l:<32 hex>  the lock of the fill under way
//   v:all        bumped by every reset                 v:b:<n>     by writes reaching counter n
//   v:n:<name>   by invalidations of a relation name   v:keys      by invalidations of caller keys
//   r:b:<n>, r:n:<name>, k:<caller key>   the entries each of those reaches (sets)
//   invalidate   the channel every gateway listens on, to drop its shared-memory entries too
// A fill reads the versions of everything it depends on when it takes the lock, and stores only if
// none moved. An invalidation bumps the versions and deletes the entries listed, in one script.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rproxy::redis_scripts {

// KEYS: entry, lock, versions...  ARGV: lock token, lock lifetime (ms), largest value fetched.
// Returns {value, its TTL in ms} when there is one; {nil, 2} when it is too large to fetch; else
// {nil, 1 when the lock was taken (0: someone else fills), versions...}.
extern const std::string_view kLookup;
// KEYS: entry, lock, versions..., sets...  ARGV: value, ttl ms, lock token, number of versions, versions...
// Returns 1 when stored, 0 when a version moved.
extern const std::string_view kStore;
// KEYS: lock  ARGV: token
extern const std::string_view kAbandon;
// KEYS: versions to bump..., sets whose entries go  ARGV: number of versions, channel, message
// Returns how many entries were deleted.
extern const std::string_view kInvalidate;
// KEYS: the version to bump  ARGV: MATCH pattern, channel, message, "keys" (delete what matches)
// or "sets" (delete the entries the matching sets list, and the sets)
extern const std::string_view kInvalidateMatching;

std::string version_all(std::string_view prefix);
std::string version_keys(std::string_view prefix);
std::string version_bucket(std::string_view prefix, uint32_t bucket);
std::string version_name(std::string_view prefix, std::string_view base_name);
std::string set_bucket(std::string_view prefix, uint32_t bucket);
std::string set_name(std::string_view prefix, std::string_view base_name);
std::string set_caller_key(std::string_view prefix, std::string_view key);
std::string lock_key(std::string_view entry_key, std::string_view prefix);
std::string channel(std::string_view prefix);
// A glob that matches s literally followed by anything (SCAN MATCH).
std::string glob_prefix(std::string_view s);

// The messages on the channel: "<origin> reset", "<origin> rel <name>", "<origin> key <prefix>",
// "<origin> buckets <n> <n>...". origin: the gateway that sent it (it acted locally already).
struct Invalidation {
    enum class Kind { Reset, Relation, CallerKey, Buckets, Unknown } kind = Kind::Unknown;
    std::string origin;
    std::string text;               // the relation, or the caller-key prefix
    std::vector<uint32_t> buckets;
};
Invalidation parse_invalidation(std::string_view message);

}  // namespace rproxy::redis_scripts
