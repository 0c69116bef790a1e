// Unit tests of clf/metrics: hand-computed cases (perfect, all wrong, tied scores,
// zero division, one class only) and an AUC cross-check against the pairwise
// Mann-Whitney count. The scikit-learn comparison itself is the golden test
// tests/python/test_metrics_sklearn.py.
#include <gtest/gtest.h>

#include <cmath>

#include "sensecf/clf/metrics.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"

namespace sensecf::clf {
namespace {

TEST(Metrics, PerfectPredictions) {
  const Metrics m = evaluate({0, 0, 1, 1}, {0.1, 0.2, 0.8, 0.9});
  EXPECT_EQ(m.n, 4u);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.precision, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.f1, 1.0);
  EXPECT_DOUBLE_EQ(m.auc, 1.0);
  EXPECT_EQ(m.line(), "acc=1.0000 pre=1.0000 rec=1.0000 f1=1.0000 auc=1.0000 n=4");
}

TEST(Metrics, AllWrong) {
  const Metrics m = evaluate({0, 0, 1, 1}, {0.9, 0.8, 0.2, 0.1});
  EXPECT_DOUBLE_EQ(m.accuracy, 0.0);
  EXPECT_DOUBLE_EQ(m.precision, 0.0);  // tp = 0, fp = 2
  EXPECT_DOUBLE_EQ(m.recall, 0.0);
  EXPECT_DOUBLE_EQ(m.f1, 0.0);
  EXPECT_DOUBLE_EQ(m.auc, 0.0);
}

TEST(Metrics, MixedCaseByHand) {
  // predictions (> 0.5): 1 0 1 0 0 1 -> tp 2, fp 1, fn 1, tn 2
  const std::vector<int> y = {1, 1, 0, 0, 0, 1};
  const std::vector<double> s = {0.9, 0.4, 0.7, 0.3, 0.5, 0.6};
  const Metrics m = evaluate(y, s);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  EXPECT_NEAR(m.f1, 2.0 / 3.0, 1e-15);
  // pairs (pos, neg): 0.9 beats 3; 0.4 beats 0.3 only; 0.6 beats 0.3, 0.5 -> 6 of 9
  EXPECT_NEAR(m.auc, 6.0 / 9.0, 1e-15);
  EXPECT_EQ(m.line(), "acc=0.6667 pre=0.6667 rec=0.6667 f1=0.6667 auc=0.6667 n=6");
}

TEST(Metrics, ThresholdIsStrictlyAboveHalf) {
  // A score of exactly 0.5 predicts 0 (argmax with ties to 0).
  const Metrics m = evaluate({1, 0}, {0.5, 0.2});
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(m.recall, 0.0);
}

TEST(Metrics, TiedScoresCountHalf) {
  // pos {0.5, 0.8}, neg {0.5, 0.2}: pairs 0.5 (tie) + 1 + 1 + 1 = 3.5 of 4.
  const Metrics m = evaluate({0, 1, 0, 1}, {0.5, 0.5, 0.2, 0.8});
  EXPECT_DOUBLE_EQ(m.auc, 0.875);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(m.precision, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 0.5);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 / 3.0);
}

TEST(Metrics, AllScoresTiedGiveHalfAuc) {
  const Metrics m = evaluate({0, 1, 1, 0, 1}, {0.3, 0.3, 0.3, 0.3, 0.3});
  EXPECT_DOUBLE_EQ(m.auc, 0.5);
  // Nothing predicted positive: precision is 0/0 -> 0 (zero_division=0).
  EXPECT_DOUBLE_EQ(m.precision, 0.0);
  EXPECT_DOUBLE_EQ(m.recall, 0.0);
  EXPECT_DOUBLE_EQ(m.f1, 0.0);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.4);
}

TEST(Metrics, ZeroDivisionGivesZero) {
  // No positive labels: recall is 0/0 -> 0; one false positive: precision 0/1.
  const Metrics m = evaluate({0, 0, 0}, {0.9, 0.1, 0.2});
  EXPECT_DOUBLE_EQ(m.precision, 0.0);
  EXPECT_DOUBLE_EQ(m.recall, 0.0);
  EXPECT_DOUBLE_EQ(m.f1, 0.0);
  EXPECT_NEAR(m.accuracy, 2.0 / 3.0, 1e-15);
}

TEST(Metrics, SingleClassGivesNanAuc) {
  EXPECT_TRUE(std::isnan(roc_auc({1, 1, 1}, {0.2, 0.9, 0.6})));
  EXPECT_TRUE(std::isnan(roc_auc({0, 0}, {0.2, 0.9})));
  const Metrics m = evaluate({1, 1, 1}, {0.2, 0.9, 0.6});
  EXPECT_TRUE(std::isnan(m.auc));
  EXPECT_DOUBLE_EQ(m.precision, 1.0);
  EXPECT_NEAR(m.recall, 2.0 / 3.0, 1e-15);
  EXPECT_NE(m.line().find("auc=nan"), std::string::npos) << m.line();
  EXPECT_TRUE(m.to_json().at("auc").is_null());  // JSON has no NaN
}

TEST(Metrics, JsonKeys) {
  const nlohmann::json j = evaluate({0, 1}, {0.4, 0.6}).to_json();
  for (const char* key : {"accuracy", "precision", "recall", "f1", "auc", "n"}) EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.size(), 6u);
  EXPECT_EQ(j.at("n").get<std::size_t>(), 2u);
  EXPECT_DOUBLE_EQ(j.at("auc").get<double>(), 1.0);
}

TEST(Metrics, AucMatchesPairwiseCountWithTies) {
  Rng rng(7);
  std::vector<int> y(500);
  std::vector<double> s(500);
  for (std::size_t i = 0; i < y.size(); ++i) {
    y[i] = rng.bernoulli(0.3) ? 1 : 0;
    s[i] = std::round(rng.uniform() * 10.0) / 10.0;  // heavy ties
  }
  double wins = 0.0, pairs = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    for (std::size_t k = 0; k < y.size(); ++k) {
      if (y[i] != 1 || y[k] != 0) continue;
      pairs += 1.0;
      wins += s[i] > s[k] ? 1.0 : (s[i] == s[k] ? 0.5 : 0.0);
    }
  }
  EXPECT_NEAR(roc_auc(y, s), wins / pairs, 1e-12);
}

TEST(Metrics, RejectsBadInput) {
  EXPECT_THROW(evaluate({0, 1}, {0.5}), Error);
  EXPECT_THROW(evaluate({0, 2}, {0.5, 0.5}), Error);
  EXPECT_THROW(evaluate({0, 1}, {0.5, std::nan("")}), Error);
}

}  // namespace
}  // namespace sensecf::clf
