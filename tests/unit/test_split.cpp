// Patient-level split (no patient on both sides, stratified, seeded) and
// label-scarcity scenarios (which rows go, how many, remembered).
#include <gtest/gtest.h>

#include <cstdint>
#include <set>

#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/data/split.h"
#include "test_util.h"

namespace sensecf::data {
namespace {

// n_patients patients with 5..14 rows each; patient p is mostly positive when p % 3 == 0.
Dataset make_groups(int n_patients, std::uint64_t seed = 1) {
  Dataset d;
  d.schema.features.push_back(test::feature("v"));
  Rng rng(seed);
  for (int p = 0; p < n_patients; ++p) {
    const int rows = 5 + static_cast<int>(rng.below(10));
    for (int i = 0; i < rows; ++i) {
      d.group.push_back(std::string("p").append(std::to_string(p)));  // not "p" + ...: GCC 12 -Wrestrict false positive (PR 105651)
      d.y.push_back(rng.bernoulli(p % 3 == 0 ? 0.8 : 0.2) ? 1 : 0);
      d.x.values.push_back(rng.uniform());
    }
  }
  d.x.n_rows = d.y.size();
  d.x.n_cols = 1;
  return d;
}

TEST(Split, NoPatientOnBothSides) {
  const Dataset d = make_groups(100);
  const Split s = patient_split(d, 0.2, 42);
  EXPECT_EQ(s.train.size() + s.test.size(), d.size());
  std::set<std::string> train_groups, test_groups;
  for (auto r : s.train) train_groups.insert(d.group[r]);
  for (auto r : s.test) test_groups.insert(d.group[r]);
  for (const auto& g : test_groups) EXPECT_EQ(train_groups.count(g), 0u) << g;
  EXPECT_EQ(test_groups.size(), 20u);  // 20% of patients (stratum-wise rounding)
}

TEST(Split, StratifiedByMajorityLabel) {
  const Dataset d = make_groups(300);
  const Split s = patient_split(d, 0.2, 3);
  auto pos_share = [&](const std::vector<std::size_t>& rows) {
    double n = 0;
    for (auto r : rows) n += d.y[r];
    return n / static_cast<double>(rows.size());
  };
  EXPECT_NEAR(pos_share(s.train), pos_share(s.test), 0.06);
}

TEST(Split, SeededAndSeedSensitive) {
  const Dataset d = make_groups(50);
  EXPECT_EQ(patient_split(d, 0.2, 7).test, patient_split(d, 0.2, 7).test);
  EXPECT_NE(patient_split(d, 0.2, 7).test, patient_split(d, 0.2, 8).test);
}

TEST(Split, RejectsDegenerateInput) {
  Dataset d = make_groups(1);
  EXPECT_THROW(patient_split(d, 0.2, 1), Error);
  d = make_groups(10);
  EXPECT_THROW(patient_split(d, 1.0, 1), Error);
}

TEST(Scenario, RemovesTheRightClassesAndRemembersThem) {
  const Dataset d = make_groups(100);
  const Split s = patient_split(d, 0.2, 1);
  std::size_t n_pos = 0;
  for (auto r : s.train) n_pos += static_cast<std::size_t>(d.y[r]);
  const std::size_t n_neg = s.train.size() - n_pos;

  const Scenario full = make_scenario(d, s.train, Scarcity::kFull, 0.5, 1);
  EXPECT_EQ(full.kept, s.train);
  EXPECT_TRUE(full.removed.empty());

  const Scenario pos = make_scenario(d, s.train, Scarcity::kPositive, 0.5, 1);
  EXPECT_EQ(pos.removed_of(0, d), 0u);
  EXPECT_EQ(pos.removed_of(1, d), static_cast<std::size_t>(std::llround(0.5 * static_cast<double>(n_pos))));
  EXPECT_EQ(pos.kept.size() + pos.removed.size(), s.train.size());

  const Scenario neg = make_scenario(d, s.train, Scarcity::kNegative, 0.3, 1);
  EXPECT_EQ(neg.removed_of(1, d), 0u);
  EXPECT_EQ(neg.removed_of(0, d), static_cast<std::size_t>(std::llround(0.3 * static_cast<double>(n_neg))));

  const Scenario dual = make_scenario(d, s.train, Scarcity::kDual, 0.5, 1);
  EXPECT_GT(dual.removed_of(0, d), 0u);
  EXPECT_GT(dual.removed_of(1, d), 0u);
  for (auto r : dual.removed) EXPECT_FALSE(std::binary_search(dual.kept.begin(), dual.kept.end(), r));
}

TEST(Scenario, SeededAndParsed) {
  const Dataset d = make_groups(60);
  const Split s = patient_split(d, 0.2, 1);
  EXPECT_EQ(make_scenario(d, s.train, Scarcity::kDual, 0.5, 9).removed,
            make_scenario(d, s.train, Scarcity::kDual, 0.5, 9).removed);
  EXPECT_NE(make_scenario(d, s.train, Scarcity::kDual, 0.5, 9).removed,
            make_scenario(d, s.train, Scarcity::kDual, 0.5, 10).removed);
  EXPECT_EQ(parse_scarcity("negative"), Scarcity::kNegative);
  EXPECT_THROW(parse_scarcity("both"), UsageError);
  EXPECT_THROW(make_scenario(d, s.train, Scarcity::kDual, 1.0, 1), Error);
}

}  // namespace
}  // namespace sensecf::data
