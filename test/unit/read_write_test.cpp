// Read-write upstreams: the policy's verdicts, the freshness counters' keys, the write tracker's
// commit detection and the catalog names the reach query is given.
#include <gtest/gtest.h>

#include <map>

#include "core/firewall_policy.hpp"
#include "core/relation_generations.hpp"
#include "proxy/upstream_relations.hpp"
#include "proxy/write_tracker.hpp"

using namespace rproxy;

namespace {

ParsedQuery one(StatementFacts st) {
    ParsedQuery p;
    p.statements.push_back(std::move(st));
    return p;
}

StatementFacts insert_into(const std::string& table) {
    StatementFacts st;
    st.kind = "INSERT";
    st.write_kind = "INSERT";
    st.written = {table};
    return st;
}

FunctionRef fn(std::string name, Volatility v) {
    FunctionRef f;
    f.name = std::move(name);
    f.volatility = v;
    return f;
}

// Counts bumps per bucket, as the shared counters would.
class Counters : public ResultCacheStore {
public:
    std::map<uint32_t, int> bumps;
    ProbeResult cache_probe(const CacheKey&, std::string&, uint64_t*, uint64_t*) override { return ProbeResult::Bypass; }
    bool cache_store(const CacheKey&, uint64_t, const std::string&, const CacheEntryMeta&) override { return false; }
    void cache_abandon(const CacheKey&, uint64_t, int) override {}
    uint64_t cache_reset() override { return 0; }
    void count_uncacheable(Uncacheable) override {}
    void count_coalesced() override {}
    uint64_t invalidate_relation(const std::string&) override { return 0; }
    uint64_t invalidate_caller_key(const std::string&) override { return 0; }
    void count_l2(L2Counter, uint64_t) override {}
    void l2_pending(const std::vector<uint32_t>&, int) override {}
    bool l2_blocked(const std::vector<uint32_t>&) override { return false; }
    uint64_t l2_reset_owed() override { return 0; }
    void l2_owe_reset() override {}
    void l2_reset_paid(uint64_t) override {}
    uint64_t generation_sum(const std::vector<uint32_t>& b) override {
        uint64_t s = 0;
        for (auto x : b) s += bumps[x];
        return s;
    }
    void bump_generations(const std::vector<uint32_t>& b) override {
        for (auto x : b) ++bumps[x];
    }
};

}  // namespace

TEST(ReadWritePolicy, WritesPassOnReadWriteAndAreRefusedOnReadOnly) {
    ParsedQuery q = one(insert_into("public.t"));
    Verdict ro = evaluate(q, {}, nullptr);
    EXPECT_FALSE(ro.allowed);
    EXPECT_EQ(ro.sqlstate, "25006");
    EXPECT_FALSE(ro.writes);  // a read-only verdict says nothing about writes
    Verdict rw = evaluate(q, {}, nullptr, Access::ReadWrite);
    EXPECT_TRUE(rw.allowed);
    EXPECT_FALSE(rw.cacheable);
    EXPECT_TRUE(rw.writes);
    EXPECT_FALSE(rw.writes_unseen);
    EXPECT_FALSE(rw.changes_definitions);
    EXPECT_EQ(rw.written, std::vector<std::string>{"public.t"});
}

TEST(ReadWritePolicy, ReadWriteTransactionsOnlyOnReadWrite) {
    StatementFacts begin;
    begin.kind = "BEGIN";
    begin.transaction_control = true;
    begin.read_write_transaction = true;
    Verdict ro = evaluate(one(begin), {}, nullptr);
    EXPECT_FALSE(ro.allowed);
    EXPECT_EQ(ro.message, "Write operations are not permitted: READ WRITE transactions are not allowed");
    EXPECT_TRUE(evaluate(one(begin), {}, nullptr, Access::ReadWrite).allowed);
}

TEST(ReadWritePolicy, RoleChangesAndDeniedNamesStayRefused) {
    StatementFacts set_role;
    set_role.kind = "SET";
    set_role.settings = {"role"};
    EXPECT_FALSE(evaluate(one(set_role), {}, nullptr, Access::ReadWrite).allowed);
    StatementFacts auth = set_role;
    auth.settings = {"session_authorization"};
    EXPECT_FALSE(evaluate(one(auth), {}, nullptr, Access::ReadWrite).allowed);
    StatementFacts ro_setting = set_role;
    ro_setting.settings = {"default_transaction_read_only"};
    EXPECT_TRUE(evaluate(one(ro_setting), {}, nullptr, Access::ReadWrite).allowed);
    EXPECT_FALSE(evaluate(one(ro_setting), {}, nullptr).allowed);

    FirewallConfig cfg;
    cfg.denied_functions = {"dblink_exec"};
    cfg.denied_settings = {"work_mem"};
    StatementFacts call;
    call.kind = "SELECT";
    call.functions = {fn("dblink_exec", Volatility::Volatile)};
    Verdict v = evaluate(one(call), cfg, nullptr, Access::ReadWrite);
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.reason, RejectReason::DeniedFunction);
    StatementFacts wm = set_role;
    wm.settings = {"work_mem"};
    EXPECT_FALSE(evaluate(one(wm), cfg, nullptr, Access::ReadWrite).allowed);
}

TEST(ReadWritePolicy, FunctionsTheParserCannotSeeIntoReachEverything) {
    StatementFacts st;
    st.kind = "SELECT";
    st.functions = {fn("nextval", Volatility::Volatile)};  // a built-in: writes no relation
    Verdict builtin = evaluate(one(st), {}, nullptr, Access::ReadWrite);
    EXPECT_TRUE(builtin.allowed);
    EXPECT_TRUE(builtin.writes);
    EXPECT_FALSE(builtin.writes_unseen);
    EXPECT_FALSE(builtin.cacheable);

    st.functions = {fn("app_func", Volatility::NotBuiltin)};
    Verdict pending = evaluate(one(st), {}, [](const FunctionRef&) { return std::optional<Volatility>(); },
                               Access::ReadWrite);
    EXPECT_EQ(pending.pending_functions.size(), 1u);  // asked on the upstream first
    Verdict own = evaluate(one(st), {}, [](const FunctionRef&) { return std::optional(Volatility::Volatile); },
                           Access::ReadWrite);
    EXPECT_TRUE(own.allowed);
    EXPECT_TRUE(own.writes_unseen);
    Verdict stable = evaluate(one(st), {}, [](const FunctionRef&) { return std::optional(Volatility::Stable); },
                              Access::ReadWrite);
    EXPECT_FALSE(stable.writes);  // a stable function cannot write
}

TEST(ReadWritePolicy, UnparsableTextIsForwardedAndNeverCached) {
    ParsedQuery bad;
    bad.error_sqlstate = "42601";
    bad.error_message = "syntax error at or near \"GRAPH\"";
    Verdict ro = evaluate(bad, {}, nullptr);
    EXPECT_FALSE(ro.allowed);
    Verdict rw = evaluate(bad, {}, nullptr, Access::ReadWrite);
    EXPECT_TRUE(rw.allowed);
    EXPECT_TRUE(rw.unparsed);
    EXPECT_FALSE(rw.cacheable);
    EXPECT_TRUE(rw.writes_unseen);
}

TEST(ReadWritePolicy, DdlChangesDefinitions) {
    StatementFacts alter;
    alter.kind = "ALTER TABLE";
    alter.write_kind = "ALTER TABLE";
    alter.written = {"t"};
    EXPECT_TRUE(evaluate(one(alter), {}, nullptr, Access::ReadWrite).changes_definitions);
    StatementFacts truncate = alter;
    truncate.kind = truncate.write_kind = "TRUNCATE TABLE";
    EXPECT_FALSE(evaluate(one(truncate), {}, nullptr, Access::ReadWrite).changes_definitions);
}

TEST(RelationGenerations, SchemaDoesNotSplitARelationsCounter) {
    EXPECT_EQ(relation_base_name("public.orders"), "orders");
    EXPECT_EQ(relation_base_name("orders"), "orders");
    EXPECT_EQ(relation_bucket("db1", "public.orders"), relation_bucket("db1", "orders"));
    EXPECT_NE(relation_bucket("db1", "orders"), relation_bucket("db2", "orders"));
    auto b = read_buckets("db1", std::vector<std::string>{"orders", "public.orders", "items"});
    ASSERT_EQ(b.size(), 3u);  // the upstream's, orders once, items
    EXPECT_EQ(b[0], upstream_bucket("db1"));
    EXPECT_NE(upstream_bucket("db1"), schema_bucket("db1"));
    for (auto x : b) EXPECT_LT(x, kGenerationBuckets);
}

TEST(WriteTracker, AutocommitBumpsAtCommandCompleteInSimpleQueries) {
    Counters c;
    WriteTracker w(c);
    w.begin_exchange(true);
    w.add({7}, kNoBucket);
    w.command_complete("INSERT 0 1");
    EXPECT_EQ(c.bumps[7], 1);  // before the client can see the tag
    w.ready('I', false);
    EXPECT_GE(c.bumps[7], 1);
    EXPECT_FALSE(w.pending());
}

TEST(WriteTracker, RollbackBumpsNothing) {
    Counters c;
    WriteTracker w(c);
    w.begin_exchange(false);
    w.add({7}, kNoBucket);
    w.ready('T', false);
    EXPECT_TRUE(w.pending());
    w.begin_exchange(false);
    w.command_complete("ROLLBACK");
    w.ready('I', false);
    EXPECT_EQ(c.bumps.count(7), 0u);
    EXPECT_FALSE(w.pending());
}

TEST(WriteTracker, CommitOfAFailedTransactionIsARollback) {
    Counters c;
    WriteTracker w(c);
    w.begin_exchange(false);
    w.add({7}, 99);
    w.ready('E', true);
    w.begin_exchange(false);
    w.command_complete("ROLLBACK");  // the server's tag for COMMIT of a failed transaction
    w.ready('I', false);
    EXPECT_EQ(c.bumps.count(7), 0u);
    EXPECT_EQ(c.bumps[99], 1);  // what was learnt inside it is checked again
}

TEST(WriteTracker, CommitAndSavepointsAndFailedAutocommit) {
    Counters c;
    WriteTracker w(c);
    // BEGIN; INSERT; SAVEPOINT s; INSERT; ROLLBACK TO s; COMMIT
    w.begin_exchange(false);
    w.add({1, 2}, kNoBucket);
    w.command_complete("ROLLBACK");
    w.command_complete("COMMIT");
    EXPECT_EQ(c.bumps[1], 1);
    EXPECT_EQ(c.bumps[2], 1);
    w.ready('I', false);
    // An autocommit statement that failed: its implicit transaction rolled back.
    w.begin_exchange(false);
    w.add({3}, kNoBucket);
    w.ready('I', true);
    EXPECT_EQ(c.bumps.count(3), 0u);
    // A lost autocommit write may have committed.
    w.begin_exchange(false);
    w.add({4}, kNoBucket);
    w.lost();
    EXPECT_EQ(c.bumps[4], 1);
}

TEST(WriteTracker, WritesAfterAnEndInTheSameExchangeAreNotLost) {
    Counters c;
    WriteTracker w(c);
    // ROLLBACK; INSERT b   (one Query: b commits on its own)
    w.begin_exchange(false);
    w.add({5}, kNoBucket);
    w.command_complete("ROLLBACK");
    w.command_complete("INSERT 0 1");
    w.ready('I', false);
    EXPECT_EQ(c.bumps[5], 1);
    // BEGIN; INSERT a; COMMIT; BEGIN; INSERT b   (b still open after the COMMIT)
    w.begin_exchange(false);
    w.add({6, 7}, kNoBucket);
    w.command_complete("COMMIT");
    EXPECT_EQ(c.bumps[6], 1);
    w.ready('T', false);
    EXPECT_TRUE(w.pending());  // b's counter goes again when its own transaction commits
    w.begin_exchange(false);
    w.command_complete("COMMIT");
    w.ready('I', false);
    EXPECT_GE(c.bumps[7], 2);
    EXPECT_FALSE(w.pending());
}

TEST(UpstreamRelations, NamesAreQuotedForToRegclass) {
    EXPECT_EQ(UpstreamRelations::quote_relation_name("orders"), "\"orders\"");
    EXPECT_EQ(UpstreamRelations::quote_relation_name("Sales.Q\"1"), "\"Sales\".\"Q\"\"1\"");
}

TEST(ReadWritePolicy, WhatTheParserCannotSeeIntoPinsTheConnection) {
    StatementFacts do_block;
    do_block.kind = "DO";
    do_block.write_kind = "DO";
    do_block.unseen_write = true;
    Verdict v = evaluate(one(do_block), {}, nullptr, Access::ReadWrite);
    EXPECT_TRUE(v.allowed);
    EXPECT_TRUE(v.session_state);  // it may SET ROLE or create a temporary table: never another client's
    EXPECT_EQ(v.state_reason, "unseen session state");
    ParsedQuery bad;
    bad.error_sqlstate = "42601";
    EXPECT_TRUE(evaluate(bad, {}, nullptr, Access::ReadWrite).session_state);
    EXPECT_FALSE(evaluate(one(insert_into("t")), {}, nullptr, Access::ReadWrite).session_state);
}
