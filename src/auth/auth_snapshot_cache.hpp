// What authentication read from the catalog, kept per role by a worker while the catalog's auth
// generation (pg/auth_generation) stays the same: a login then reads no catalog. A snapshot also
// ages out after max_age, for changes no hook sees (a superuser's direct UPDATE of pg_authid).
// Unknown roles are kept too, so failed logins with made-up names cost no catalog read either.
#pragma once
#include "core/pure_layer.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "auth/auth_snapshot.hpp"

namespace rproxy::auth {

class AuthSnapshotCache {
public:
    using Clock = std::chrono::steady_clock;
    explicit AuthSnapshotCache(std::chrono::seconds max_age = std::chrono::seconds(60), std::size_t max_roles = 10000)
        : max_age_(max_age), max_roles_(max_roles) {}

    // The snapshot of role when it is still current; null otherwise.
    const AuthSnapshot* find(const std::string& role, uint64_t generation, Clock::time_point now) {
        if (generation != generation_) {
            entries_.clear();
            generation_ = generation;
            return nullptr;
        }
        auto it = entries_.find(role);
        if (it == entries_.end() || now - it->second.at > max_age_) return nullptr;
        return &it->second.snapshot;
    }

    // Keeps a snapshot read at generation (one that failed to read is never kept).
    void store(const std::string& role, uint64_t generation, Clock::time_point now, AuthSnapshot snapshot) {
        if (!snapshot.error.empty()) return;
        if (generation != generation_) {
            entries_.clear();
            generation_ = generation;
        }
        if (entries_.size() >= max_roles_ && !entries_.count(role)) entries_.clear();
        entries_[role] = Entry{now, std::move(snapshot)};
    }

    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        Clock::time_point at;
        AuthSnapshot snapshot;
    };
    std::chrono::seconds max_age_;
    std::size_t max_roles_;
    uint64_t generation_ = 0;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace rproxy::auth
