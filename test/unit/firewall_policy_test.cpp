#include <gtest/gtest.h>

#include "core/firewall_policy.hpp"
#include "proxy/upstream_functions.hpp"

using namespace rproxy;

namespace {

StatementFacts select_calling(std::vector<FunctionRef> fns) {
    StatementFacts st;
    st.kind = "SELECT";
    st.functions = std::move(fns);
    return st;
}

FunctionRef fn(std::string name, Volatility v, std::string schema = "") {
    FunctionRef f;
    f.name = std::move(name);
    f.schema = std::move(schema);
    f.volatility = v;
    return f;
}

ParsedQuery one(StatementFacts st) {
    ParsedQuery p;
    p.statements.push_back(std::move(st));
    return p;
}

}  // namespace

TEST(FirewallPolicy, ImmutableReadsAreAllowedAndCacheable) {
    Verdict v = evaluate(one(select_calling({fn("abs", Volatility::Immutable)})), {}, nullptr);
    EXPECT_TRUE(v.allowed);
    EXPECT_TRUE(v.cacheable);
    ASSERT_EQ(v.statements.size(), 1u);
    EXPECT_TRUE(v.statements[0].cacheable);
}

TEST(FirewallPolicy, StableAllowedButNotCacheable) {
    Verdict v = evaluate(one(select_calling({fn("now", Volatility::Stable)})), {}, nullptr);
    EXPECT_TRUE(v.allowed);
    EXPECT_FALSE(v.cacheable);
    StatementFacts time = select_calling({});
    time.time_dependent = true;
    EXPECT_FALSE(evaluate(one(time), {}, nullptr).cacheable);
}

TEST(FirewallPolicy, VolatileRejectedUnlessAllowedByName) {
    Verdict v = evaluate(one(select_calling({fn("pg_terminate_backend", Volatility::Volatile)})), {}, nullptr);
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.sqlstate, "25006");
    EXPECT_EQ(v.reason, RejectReason::VolatileFunction);
    EXPECT_EQ(v.message, "function pg_terminate_backend() is not allowed: it is volatile");
    FirewallConfig cfg;
    cfg.allowed_functions = parse_name_list(" Random , pg_catalog.clock_timestamp");
    EXPECT_TRUE(evaluate(one(select_calling({fn("random", Volatility::Volatile)})), cfg, nullptr).allowed);
    EXPECT_TRUE(
        evaluate(one(select_calling({fn("clock_timestamp", Volatility::Volatile, "pg_catalog")})), cfg, nullptr).allowed);
    EXPECT_FALSE(evaluate(one(select_calling({fn("clock_timestamp", Volatility::Volatile)})), cfg, nullptr).allowed);
    EXPECT_FALSE(evaluate(one(select_calling({fn("random", Volatility::Volatile)})), cfg, nullptr).cacheable);
}

TEST(FirewallPolicy, DeniedFunctionsWhateverTheirVolatility) {
    FirewallConfig cfg;
    cfg.denied_functions = parse_name_list("lower");
    Verdict v = evaluate(one(select_calling({fn("lower", Volatility::Immutable)})), cfg, nullptr);
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.reason, RejectReason::DeniedFunction);
}

TEST(FirewallPolicy, UnknownFunctionsAskTheUpstreamThenFollowThePolicy) {
    ParsedQuery p = one(select_calling({fn("my_func", Volatility::NotBuiltin, "app")}));
    std::optional<Volatility> answer;
    UpstreamVolatility lookup = [&](const FunctionRef& f) {
        EXPECT_EQ(f.key(), "app.my_func/-1");
        return answer;
    };
    Verdict pending = evaluate(p, {}, lookup);
    EXPECT_FALSE(pending.allowed);
    ASSERT_EQ(pending.pending_functions.size(), 1u);
    EXPECT_EQ(pending.pending_functions[0], "app.my_func/-1");
    EXPECT_EQ(pending.reason, RejectReason::None);

    answer = Volatility::Volatile;
    EXPECT_EQ(evaluate(p, {}, lookup).message, "function app.my_func() is not allowed: it is volatile");
    answer = Volatility::Stable;
    EXPECT_TRUE(evaluate(p, {}, lookup).allowed);
    answer = Volatility::Missing;
    Verdict missing = evaluate(p, {}, lookup);
    EXPECT_EQ(missing.reason, RejectReason::UnknownFunction);
    FirewallConfig allow_unknown;
    allow_unknown.allow_unknown_functions = true;
    EXPECT_TRUE(evaluate(p, allow_unknown, lookup).allowed);
    // Without an upstream to ask (pg_rproxy_classify in the gateway) the name is unknown.
    EXPECT_EQ(evaluate(p, {}, nullptr).reason, RejectReason::UnknownFunction);
}

TEST(FirewallPolicy, ProtectedAndDeniedSettings) {
    StatementFacts set;
    set.kind = "SET";
    set.settings = {"default_transaction_read_only"};
    Verdict v = evaluate(one(set), {}, nullptr);
    EXPECT_EQ(v.message, "setting default_transaction_read_only cannot be changed through pg_rproxy");
    EXPECT_EQ(v.reason, RejectReason::Setting);
    set.settings = {"work_mem"};
    EXPECT_TRUE(evaluate(one(set), {}, nullptr).allowed);
    FirewallConfig cfg;
    cfg.denied_settings = parse_name_list("WORK_MEM");
    EXPECT_FALSE(evaluate(one(set), cfg, nullptr).allowed);
    for (const char* s : {"transaction_read_only", "session_authorization", "role"}) EXPECT_TRUE(setting_always_denied(s));
}

TEST(FirewallPolicy, OneRejectedStatementRejectsTheString) {
    ParsedQuery p;
    p.statements.push_back(select_calling({}));
    StatementFacts del;
    del.kind = "DELETE";
    del.write_kind = "DELETE";
    p.statements.push_back(del);
    p.statements.push_back(select_calling({fn("x", Volatility::NotBuiltin)}));
    Verdict v = evaluate(p, {}, [](const FunctionRef&) { return std::optional<Volatility>(); });
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.message, "Write operations are not permitted: DELETE statements are not allowed");
    EXPECT_TRUE(v.pending_functions.empty()) << "a rejected string needs no upstream lookup";
    EXPECT_TRUE(v.statements[0].allowed);
    EXPECT_FALSE(v.statements[1].allowed);
}

TEST(FirewallPolicy, ParserErrorsPassThrough) {
    ParsedQuery p;
    p.error_sqlstate = "42601";
    p.error_message = "syntax error at or near \"SELEC\"";
    p.error_position = 1;
    Verdict v = evaluate(p, {}, nullptr);
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.sqlstate, "42601");
    EXPECT_EQ(v.position, 1);
    EXPECT_EQ(v.reason, RejectReason::SyntaxError);
}

TEST(UpstreamFunctions, ArrayLiteralQuotesEveryName) {
    EXPECT_EQ(UpstreamFunctions::array_literal({"a", "we\"ird", "back\\slash"}), "{\"a\",\"we\\\"ird\",\"back\\\\slash\"}");
    EXPECT_EQ(UpstreamFunctions::worst(Volatility::Stable, Volatility::Volatile), Volatility::Volatile);
    EXPECT_EQ(UpstreamFunctions::worst(Volatility::Immutable, Volatility::Stable), Volatility::Stable);
}

TEST(FirewallPolicy, OverloadsAreJudgedByArity) {
    EXPECT_TRUE(arity_matches(1, 1, 0, false));
    EXPECT_FALSE(arity_matches(1, 2, 0, false));  // length(bytea, name) cannot take length(x)
    EXPECT_TRUE(arity_matches(1, 2, 1, false));   // a defaulted second argument
    EXPECT_TRUE(arity_matches(5, 1, 0, true));    // VARIADIC
    EXPECT_TRUE(arity_matches(0, 1, 0, true));    // VARIADIC may take nothing
    EXPECT_TRUE(arity_matches(-1, 3, 0, false));  // unknown call site: every candidate counts
}

TEST(FirewallPolicy, StableBuiltinsWithHiddenSideEffectsAreRefused) {
    for (const char* name : {"txid_current", "pg_current_xact_id", "fmgr_c_validator", "fmgr_sql_validator"}) {
        for (const char* schema : {"", "pg_catalog"}) {
            Verdict v = evaluate(one(select_calling({fn(name, Volatility::Stable, schema)})), {}, nullptr);
            EXPECT_FALSE(v.allowed) << schema << "." << name;
            EXPECT_EQ(v.reason, RejectReason::SideEffectFunction);
            EXPECT_EQ(v.sqlstate, "25006");
        }
    }
    Verdict v = evaluate(one(select_calling({fn("txid_current", Volatility::Stable)})), {}, nullptr);
    EXPECT_NE(v.message.find("assigns a transaction ID"), std::string::npos) << v.message;
    // Neighbours that only read stay allowed, and so does a function of that name in another schema.
    EXPECT_TRUE(evaluate(one(select_calling({fn("txid_current_if_assigned", Volatility::Stable)})), {}, nullptr).allowed);
    EXPECT_TRUE(evaluate(one(select_calling({fn("pg_current_snapshot", Volatility::Stable)})), {}, nullptr).allowed);
    EXPECT_TRUE(evaluate(one(select_calling({fn("txid_current", Volatility::Stable, "app")})), {}, nullptr).allowed);
    // An administrator may still allow one by name.
    FirewallConfig cfg;
    cfg.allowed_functions = {"txid_current"};
    EXPECT_TRUE(evaluate(one(select_calling({fn("txid_current", Volatility::Stable)})), cfg, nullptr).allowed);
}
