#include <gtest/gtest.h>

#include "auth/auth_snapshot_cache.hpp"

using rproxy::AuthSnapshot;
using rproxy::auth::AuthSnapshotCache;

namespace {
AuthSnapshot role_with(const std::string& secret) {
    AuthSnapshot s;
    s.role.exists = true;
    s.role.secret = secret;
    return s;
}
}  // namespace

TEST(AuthSnapshotCache, KeptWhileTheGenerationStaysAndForgottenWhenItMoves) {
    AuthSnapshotCache cache(std::chrono::seconds(60));
    auto t0 = AuthSnapshotCache::Clock::now();
    EXPECT_EQ(cache.find("alice", 7, t0), nullptr);
    cache.store("alice", 7, t0, role_with("old"));
    ASSERT_NE(cache.find("alice", 7, t0 + std::chrono::seconds(5)), nullptr);
    EXPECT_EQ(cache.find("alice", 7, t0)->role.secret, "old");
    EXPECT_EQ(cache.find("bob", 7, t0), nullptr);
    // ALTER ROLE ... PASSWORD committed somewhere: every role is read again.
    EXPECT_EQ(cache.find("alice", 8, t0), nullptr);
    EXPECT_EQ(cache.size(), 0u);
    cache.store("alice", 8, t0, role_with("new"));
    EXPECT_EQ(cache.find("alice", 8, t0)->role.secret, "new");
}

TEST(AuthSnapshotCache, AgesOutAndNeverKeepsAFailedRead) {
    AuthSnapshotCache cache(std::chrono::seconds(60), 2);
    auto t0 = AuthSnapshotCache::Clock::now();
    cache.store("alice", 1, t0, role_with("a"));
    EXPECT_EQ(cache.find("alice", 1, t0 + std::chrono::seconds(61)), nullptr);
    AuthSnapshot failed;
    failed.error = "could not read";
    cache.store("carol", 1, t0, failed);
    EXPECT_EQ(cache.find("carol", 1, t0), nullptr);
    // Unknown roles are kept like known ones.
    cache.store("nobody", 1, t0, AuthSnapshot());
    ASSERT_NE(cache.find("nobody", 1, t0), nullptr);
    EXPECT_FALSE(cache.find("nobody", 1, t0)->role.exists);
    // Bounded: past max_roles the cache starts over.
    cache.store("dave", 1, t0, role_with("d"));
    EXPECT_EQ(cache.size(), 1u);
}
