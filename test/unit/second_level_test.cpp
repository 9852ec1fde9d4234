// The second cache level's pure pieces: the Redis URL, the parameter hooks, the value format that
// guards what Redis hands back, and the invalidation messages.
#include <gtest/gtest.h>

#include "core/l2_value.hpp"
#include "core/parameter_hook.hpp"
#include "core/redis_scripts.hpp"
#include "core/redis_url.hpp"

using namespace rproxy;

TEST(RedisUrl, ParsesEveryPart) {
    std::string err;
    auto ep = parse_redis_url("redis://app:s%40cret@cache.local:6380/2", &err);
    ASSERT_TRUE(ep) << err;
    EXPECT_EQ(ep->host, "cache.local");
    EXPECT_EQ(ep->port, 6380);
    EXPECT_EQ(ep->user, "app");
    EXPECT_EQ(ep->password, "s@cret");
    EXPECT_EQ(ep->db, 2);
    EXPECT_EQ(ep->describe(), "redis://app:***@cache.local:6380/2");
    EXPECT_EQ(ep->describe().find("cret"), std::string::npos);

    auto plain = parse_redis_url("redis://127.0.0.1", &err);
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->port, 6379);
    EXPECT_TRUE(plain->password.empty());

    auto pw_only = parse_redis_url("redis://:pw@[::1]:7000", &err);
    ASSERT_TRUE(pw_only);
    EXPECT_EQ(pw_only->host, "::1");
    EXPECT_EQ(pw_only->port, 7000);
    EXPECT_EQ(pw_only->password, "pw");
    EXPECT_TRUE(pw_only->user.empty());

    auto unix_ep = parse_redis_url("unix:///run/redis/redis.sock?db=3", &err);
    ASSERT_TRUE(unix_ep);
    EXPECT_EQ(unix_ep->socket_path, "/run/redis/redis.sock");
    EXPECT_EQ(unix_ep->db, 3);
}

TEST(RedisUrl, RefusesWhatItCannotUse) {
    std::string err;
    for (const char* bad : {"http://x:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:12ab", "redis://h/x",
                            "unix://relative.sock", "redis://u:%zz@h", "redis://[::1"}) {
        err.clear();
        EXPECT_FALSE(parse_redis_url(bad, &err)) << bad;
        EXPECT_FALSE(err.empty()) << bad;
    }
}

TEST(ParameterHook, ReadsTheOptions) {
    auto h = parse_parameter_hook("PGPROXY,NO_CACHE");
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->no_cache);

    h = parse_parameter_hook("PGPROXY,TTL:60,CACHE_KEY:tenant1:orders");
    ASSERT_TRUE(h);
    EXPECT_FALSE(h->no_cache);
    EXPECT_EQ(h->ttl_seconds, 60);
    EXPECT_EQ(h->caller_key, "tenant1:orders");  // a key may hold colons

    h = parse_parameter_hook("PGPROXY,FOO,BAR:1,CACHE_KEY:k");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->unknown_options, 2);
    EXPECT_EQ(h->caller_key, "k");
}

TEST(ParameterHook, MalformedIsAnOrdinaryParameter) {
    for (const char* v : {"pgproxy,NO_CACHE", "PGPROXY", "PGPROXY,", "PGPROXY,TTL:abc", "PGPROXY,TTL:-1", "PGPROXY,TTL:",
                          "PGPROXY,CACHE_KEY:", "PGPROXY,NO_CACHE,,TTL:1", "PGPROXY,TTL:1,TTL:2", "PGPROXY,:x",
                          "PGPROXY,CACHE_KEY:a,CACHE_KEY:b", "x PGPROXY,NO_CACHE"})
        EXPECT_FALSE(parse_parameter_hook(v)) << v;
}

namespace {
std::string message(char type, const std::string& body) {
    std::string m(1, type);
    uint32_t len = static_cast<uint32_t>(body.size() + 4);
    for (int i = 3; i >= 0; --i) m += static_cast<char>((len >> (i * 8)) & 0xff);
    return m + body;
}
}  // namespace

TEST(L2Value, RoundTrips) {
    std::string wire = message('T', std::string(6, 'x')) + message('D', "row") + message('C', "SELECT 1");
    std::string v = encode_l2_value("key-a", wire, 1, 5000);
    EXPECT_EQ(v.substr(0, 6), "PGRPX1");
    L2Entry e;
    ASSERT_EQ(decode_l2_value(v, "key-a", 1000, &e), L2Decode::Ok);
    EXPECT_EQ(e.wire, wire);
    EXPECT_EQ(e.rows, 1u);
    EXPECT_EQ(e.expires_at_ms, 5000u);
}

TEST(L2Value, NeverServesAnotherKeyOrAStaleOne) {
    std::string wire = message('C', "SELECT 0");
    std::string v = encode_l2_value("role=a;select 1", wire, 0, 5000);
    L2Entry e;
    EXPECT_EQ(decode_l2_value(v, "role=b;select 1", 1000, &e), L2Decode::OtherKey);
    EXPECT_EQ(decode_l2_value(v, "role=a;select 1", 5000, &e), L2Decode::Expired);
}

TEST(L2Value, AnythingAlteredIsCorrupt) {
    std::string wire = message('D', "abcdef") + message('C', "SELECT 1");
    std::string v = encode_l2_value("k", wire, 1, 5000);
    L2Entry e;
    EXPECT_EQ(decode_l2_value("", "k", 0, &e), L2Decode::Corrupt);
    EXPECT_EQ(decode_l2_value("PGRPX1garbage", "k", 0, &e), L2Decode::Corrupt);
    EXPECT_EQ(decode_l2_value(v.substr(0, v.size() - 1), "k", 0, &e), L2Decode::Corrupt);
    EXPECT_EQ(decode_l2_value(v + "x", "k", 0, &e), L2Decode::Corrupt);
    for (std::size_t i = 0; i < v.size(); ++i) {
        std::string flipped = v;
        flipped[i] ^= 0x01;
        EXPECT_NE(decode_l2_value(flipped, "k", 0, &e), L2Decode::Ok) << "byte " << i;
    }
    // A checksum that matches a value whose messages do not frame: refused all the same.
    std::string unframed = encode_l2_value("k", "D\x00\x00\x00\xff", 1, 5000);
    EXPECT_EQ(decode_l2_value(unframed, "k", 0, &e), L2Decode::Corrupt);
}

TEST(L2Value, EntryKeysAreFixedSize) {
    EXPECT_EQ(l2_entry_key("p:", 1, 2), "p:e:00000000000000010000000000000002");
    EXPECT_EQ(redis_scripts::lock_key("p:e:00000000000000010000000000000002", "p:"), "p:l:00000000000000010000000000000002");
}

TEST(RedisScripts, InvalidationMessages) {
    namespace rs = redis_scripts;
    auto r = rs::parse_invalidation("abc reset");
    EXPECT_EQ(r.kind, rs::Invalidation::Kind::Reset);
    EXPECT_EQ(r.origin, "abc");
    r = rs::parse_invalidation("abc rel public.orders");
    EXPECT_EQ(r.kind, rs::Invalidation::Kind::Relation);
    EXPECT_EQ(r.text, "public.orders");
    r = rs::parse_invalidation("abc key tenant 1");
    EXPECT_EQ(r.kind, rs::Invalidation::Kind::CallerKey);
    EXPECT_EQ(r.text, "tenant 1");
    r = rs::parse_invalidation("abc buckets 1 16383");
    EXPECT_EQ(r.kind, rs::Invalidation::Kind::Buckets);
    EXPECT_EQ(r.buckets, (std::vector<uint32_t>{1, 16383}));
    EXPECT_EQ(rs::parse_invalidation("abc buckets 1 x").kind, rs::Invalidation::Kind::Unknown);
    EXPECT_EQ(rs::parse_invalidation("abc").kind, rs::Invalidation::Kind::Unknown);
    EXPECT_EQ(rs::parse_invalidation("abc drop everything").kind, rs::Invalidation::Kind::Unknown);
    EXPECT_EQ(rs::glob_prefix("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
}
