#include <gtest/gtest.h>

#include "proxy/statement_memo.hpp"

using rproxy::ParsedQuery;
using rproxy::StatementMemo;
using rproxy::Verdict;

namespace {
std::shared_ptr<const ParsedQuery> select_from(const std::string& relation, const std::string& normalized,
                                               bool literal_facts = false) {
    auto p = std::make_shared<ParsedQuery>();
    p->statements.emplace_back();
    p->statements.back().kind = "SELECT";
    p->relations.push_back(relation);
    p->normalized = normalized;
    p->literal_facts = literal_facts;
    return p;
}
constexpr uint64_t upstream_a = 1;
constexpr uint64_t upstream_b = 2;
}  // namespace

TEST(StatementMemo, SameShapeTakesTheFactsWithItsOwnNormalizedForm) {
    StatementMemo memo;
    auto first = select_from("t", "select * from t where a = 1");
    memo.remember_shape("select * from t where a = \x01i", first);
    auto second = memo.find_shape("select * from t where a = \x01i", "select * from t where a = 2");
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(second->normalized, "select * from t where a = 2");  // the cache key is its own
    EXPECT_EQ(second->relations, first->relations);
    EXPECT_EQ(second->statements.size(), 1u);
    EXPECT_EQ(second->facts_identity(), first.get());
    EXPECT_EQ(memo.find_shape("select * from t where a = \x01s", "select * from t where a = 'x'"), nullptr);
}

TEST(StatementMemo, FactsReadFromALiteralOrAnErrorAreNeverSharedByShape) {
    StatementMemo memo;
    memo.remember_shape("select set_config ( \x01s , \x01s , false )",
                        select_from("", "select set_config ( 'application_name' , 'x' , false )", true));
    EXPECT_EQ(memo.find_shape("select set_config ( \x01s , \x01s , false )",
                              "select set_config ( 'default_transaction_read_only' , 'off' , false )"),
              nullptr);
    auto error = std::make_shared<ParsedQuery>();
    error->error_sqlstate = "42601";
    memo.remember_shape("selec \x01i", error);
    EXPECT_EQ(memo.find_shape("selec \x01i", "selec 2"), nullptr);
    memo.remember_shape("", select_from("t", "select 1"));  // no shape: nothing to remember
    EXPECT_EQ(memo.find_shape("", "select 1"), nullptr);
}

TEST(StatementMemo, StatementsOfOneShapeShareTheVerdictPerUpstream) {
    StatementMemo memo;
    auto first = select_from("t", "select * from t where a = 1");
    memo.remember_shape("select * from t where a = \x01i", first);
    auto second = memo.find_shape("select * from t where a = \x01i", "select * from t where a = 2");
    auto v = std::make_shared<const Verdict>(Verdict{true});
    memo.remember_verdict(second, upstream_a, v);
    EXPECT_EQ(memo.verdict(*first, upstream_a), v);
    auto third = memo.find_shape("select * from t where a = \x01i", "select * from t where a = 3");
    EXPECT_EQ(memo.verdict(*third, upstream_a), v);
    EXPECT_EQ(memo.verdict(*third, upstream_b), nullptr);  // learned on one upstream only
    EXPECT_EQ(memo.verdict(*select_from("t", "select * from t where a = 1"), upstream_a), nullptr);
}

TEST(StatementMemo, EveryPartIsBoundedAndClearedOnReload) {
    StatementMemo memo(2, 1024);
    for (int i = 0; i < 3; i++) memo.remember("select " + std::to_string(i), select_from("t", "select"));
    EXPECT_EQ(memo.find("select 0"), nullptr);  // started over when full
    EXPECT_NE(memo.find("select 2"), nullptr);
    std::string huge(1024, 'x');
    memo.remember(huge, select_from("t", huge));
    EXPECT_EQ(memo.find(huge), nullptr);
    auto big = select_from("t", huge);
    memo.remember_verdict(big, upstream_a, std::make_shared<const Verdict>());
    EXPECT_EQ(memo.verdict(*big, upstream_a), nullptr);  // a huge statement is judged again
    auto p = select_from("t", "select * from t where a = 1");
    memo.remember_shape("select * from t where a = \x01i", p);
    memo.remember_verdict(p, upstream_a, std::make_shared<const Verdict>());
    memo.clear();
    EXPECT_EQ(memo.find("select 2"), nullptr);
    EXPECT_EQ(memo.find_shape("select * from t where a = \x01i", "x"), nullptr);
    EXPECT_EQ(memo.verdict(*p, upstream_a), nullptr);
    EXPECT_EQ(memo.bytes(), 0u);
}

TEST(StatementMemo, ATextIsSeenBeforeFromItsSecondTimeUntilTheNextReload) {
    StatementMemo memo;
    EXPECT_FALSE(memo.seen_before("select 1"));
    EXPECT_TRUE(memo.seen_before("select 1"));
    EXPECT_FALSE(memo.seen_before("select 2"));
    memo.clear();
    EXPECT_FALSE(memo.seen_before("select 1"));
}
