#include "core/relation_generations.hpp"

#include <algorithm>

namespace rproxy {

namespace {
// FNV-1a: the same in every worker process, whatever the standard library's hash does.
uint64_t fnv1a(std::string_view a, char kind, std::string_view b) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::string_view s) {
        for (unsigned char c : s) {
            h ^= c;
            h *= 1099511628211ull;
        }
    };
    mix(a);
    mix(std::string_view(&kind, 1));
    mix(b);
    return h;
}
}  // namespace

std::string_view relation_base_name(std::string_view name) {
    std::size_t dot = name.rfind('.');
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

uint32_t relation_bucket(std::string_view data_identity, std::string_view relation) {
    return uint32_t(fnv1a(data_identity, 'r', relation_base_name(relation)) % kGenerationBuckets);
}

uint32_t upstream_bucket(std::string_view data_identity) {
    return uint32_t(fnv1a(data_identity, 'u', {}) % kGenerationBuckets);
}

uint32_t schema_bucket(std::string_view data_identity) {
    return uint32_t(fnv1a(data_identity, 's', {}) % kGenerationBuckets);
}

void add_bucket(std::vector<uint32_t>& buckets, uint32_t b) {
    if (std::find(buckets.begin(), buckets.end(), b) == buckets.end()) buckets.push_back(b);
}

}  // namespace rproxy
