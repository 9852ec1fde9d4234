// Freshness of cached results after writes through the proxy. Every cached result records the
// generation counters of the relations it read, and of its upstream as a whole; a committed write
// bumps the counters of what it wrote, and a result whose counters moved since its fill began is
// neither stored nor served. The counters live in shared memory (pg/result_cache), so a write
// through one worker is seen by every worker.
#pragma once
#include "core/pure_layer.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rproxy {

constexpr uint32_t kGenerationBuckets = 16384;
// A result reading more relations than this (besides its upstream's own counter) is not cached.
constexpr std::size_t kMaxGenerationBuckets = 16;

// The relation's name without its schema: relations of one name in several schemas share a
// counter (an invalidation too many, never one too few), so that a name resolved through any
// search_path, qualified or not, finds the same counter.
std::string_view relation_base_name(std::string_view name);

// The counter of a relation on an upstream's data (data_identity: servers and database, not the
// role: a write as one role makes another role's results old too).
uint32_t relation_bucket(std::string_view data_identity, std::string_view relation);
// The counter every result of that upstream also records: bumped when a write's reach is unknown.
uint32_t upstream_bucket(std::string_view data_identity);
// Bumped with every committed change of relation definitions (DDL): what the proxy learned about
// the relations (views, partitions, foreign keys, triggers) is checked against it.
uint32_t schema_bucket(std::string_view data_identity);

// Appends b unless it is there already.
void add_bucket(std::vector<uint32_t>& buckets, uint32_t b);

// The counters a read of these relations records: its upstream's first, then one per relation,
// without repeats.
template <class Names>
std::vector<uint32_t> read_buckets(std::string_view data_identity, const Names& relations) {
    std::vector<uint32_t> out;
    out.reserve(relations.size() + 1);
    out.push_back(upstream_bucket(data_identity));
    for (const auto& r : relations) add_bucket(out, relation_bucket(data_identity, r));
    return out;
}

}  // namespace rproxy
