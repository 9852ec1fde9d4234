#include <gtest/gtest.h>

#include "core/fast_path_policy.hpp"
#include "protocol/backend_decode.hpp"
#include "protocol/frontend_encode.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/function_call.hpp"

using namespace rproxy;

namespace {
std::optional<std::string> be4(int32_t v) {
    uint32_t u = static_cast<uint32_t>(v);
    return std::string{char(u >> 24), char(u >> 16), char(u >> 8), char(u)};
}
constexpr int32_t kInvRead = 0x40000, kInvWrite = 0x20000;

FastPathVerdict judge(uint32_t oid, const std::vector<int16_t>& formats, const std::vector<std::optional<std::string>>& args,
                      int16_t result_format = 1, const FirewallConfig& cfg = {}) {
    return judge_fast_path(oid, formats, args, result_format, cfg);
}
}  // namespace

TEST(FastPathPolicy, ReadingLargeObjectsPasses) {
    EXPECT_TRUE(judge(952, {1}, {be4(16384), be4(kInvRead)}).function);                    // lo_open
    EXPECT_TRUE(judge(952, {0}, {std::string("16384"), std::to_string(kInvRead)}).function);  // text args
    EXPECT_TRUE(judge(954, {1}, {be4(0), be4(16384)}).function);                            // loread
    EXPECT_TRUE(judge(953, {1}, {be4(0)}).function);                                        // lo_close
    EXPECT_TRUE(judge(3170, {1, 1, 1}, {be4(0), std::string(8, '\0'), be4(0)}).function);   // lo_lseek64
    EXPECT_STREQ(fast_path_function(954)->name, "loread");
}

TEST(FastPathPolicy, EverythingElseIsRefused) {
    auto refused = [](FastPathVerdict v, const char* sqlstate) {
        EXPECT_FALSE(v.function);
        EXPECT_EQ(v.sqlstate, sqlstate) << v.message;
    };
    refused(judge(952, {1}, {be4(16384), be4(kInvWrite)}), "25006");             // lo_open for writing
    refused(judge(952, {1}, {be4(16384), be4(kInvRead | kInvWrite)}), "25006");
    refused(judge(952, {0}, {std::string("16384"), std::string("0x20000")}), "25006");  // unreadable mode
    refused(judge(952, {1}, {be4(16384), std::nullopt}), "25006");
    refused(judge(955, {1}, {be4(0), std::string("x")}), "25006");   // lowrite
    refused(judge(964, {1}, {be4(16384)}), "25006");                 // lo_unlink
    refused(judge(957, {1}, {be4(0)}), "25006");                     // lo_creat
    refused(judge(1004, {1}, {be4(0), be4(0)}), "25006");            // lo_truncate
    refused(judge(2096, {1}, {be4(123)}), "25006");                  // pg_terminate_backend
    refused(judge(954, {1}, {be4(0)}), "08P01");                     // loread with one argument
    refused(judge(954, {2}, {be4(0), be4(1)}), "22023");
    refused(judge(954, {1}, {be4(0), be4(1)}, 2), "22023");  // result format
    FirewallConfig cfg;
    cfg.denied_functions = {"loread"};
    refused(judge(954, {1}, {be4(0), be4(1)}, 1, cfg), "25006");
    cfg.denied_functions = {"pg_catalog.lo_open"};
    refused(judge(952, {1}, {be4(16384), be4(kInvRead)}, 1, cfg), "25006");
}

TEST(FunctionCall, DecodeAndAnswer) {
    std::string wire;
    protocol::append_function_call(wire, 954, {1}, {std::string_view("\0\0\0\0", 4), std::nullopt}, 1);
    std::size_t used = 0;
    auto m = protocol::decode_message(wire, 1 << 20, used);
    ASSERT_TRUE(m);
    auto call = protocol::decode_function_call(m->body);
    EXPECT_EQ(call.function_oid, 954u);
    EXPECT_EQ(call.arg_formats, (std::vector<int16_t>{1}));
    ASSERT_EQ(call.args.size(), 2u);
    EXPECT_EQ(*call.args[0], std::string(4, '\0'));
    EXPECT_FALSE(call.args[1]);
    EXPECT_EQ(call.result_format, 1);

    std::string bad;
    protocol::append_function_call(bad, 954, {1, 1, 1}, {std::string_view("a"), std::string_view("b")}, 0);
    m = protocol::decode_message(bad, 1 << 20, used);
    EXPECT_THROW(protocol::decode_function_call(m->body), protocol::ProtocolError);  // 3 formats, 2 arguments
    EXPECT_THROW(protocol::decode_function_call(std::string_view("\0\0\3\xba\0", 5)), protocol::ProtocolError);

    std::string out;
    protocol::append_function_call_response(out, std::string_view("data"));
    protocol::append_function_call_response(out, std::nullopt);
    auto v = protocol::decode_backend_message(out, 1 << 20, used);
    EXPECT_EQ(*protocol::decode_function_call_response(v->body), "data");
    auto null = protocol::decode_backend_message(std::string_view(out).substr(used), 1 << 20, used);
    EXPECT_FALSE(protocol::decode_function_call_response(null->body));
}

TEST(FastPath, ReadWriteUpstreamsTakeAnyCallButSetConfigAndUncheckableDenials) {
    FirewallConfig cfg;
    // lo_creat (957) and lowrite (955) write: refused read-only, passed read-write
    EXPECT_FALSE(judge_fast_path(957, {1}, {be4(0)}, 1, cfg).allowed);
    EXPECT_TRUE(judge_fast_path(957, {1}, {be4(0)}, 1, cfg, Access::ReadWrite).allowed);
    EXPECT_FALSE(judge_fast_path(2078, {}, {std::string("role"), std::string("x"), std::string("f")}, 0, cfg,
                                 Access::ReadWrite).allowed);  // set_config by OID
    cfg.denied_functions = {"dblink_exec"};
    EXPECT_FALSE(judge_fast_path(957, {1}, {be4(0)}, 1, cfg, Access::ReadWrite).allowed);  // cannot be checked by name
    cfg.denied_functions = {"loread"};
    EXPECT_FALSE(judge_fast_path(954, {1}, {be4(0), be4(10)}, 1, cfg, Access::ReadWrite).allowed);
}
