// Synthetic AI-READI-like cohort: determinism, schema, physical ranges,
// within-participant structure, label balance, and the documented direction
// of the ground-truth stress score.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/synth.h"

namespace sensecf::data {
namespace {

SynthOptions small_options(unsigned long seed = 7) {
  SynthOptions o;
  o.n_participants = 60;
  o.windows_per_participant = 14;  // crosses a day boundary (12 windows per day)
  o.seed = seed;
  return o;
}

// One cohort of the default size, generated once for the tests that need numbers.
const Dataset& default_cohort() {
  static const Dataset d = make_synthetic_cohort(SynthOptions{});
  return d;
}

double col(const Dataset& d, std::size_t r, const char* name) {
  return d.x.at(r, d.schema.index_of(name));
}

std::string category(const Dataset& d, std::size_t r, const char* name) {
  const Feature& f = d.schema.features[d.schema.index_of(name)];
  return f.categories.at(static_cast<std::size_t>(col(d, r, name)));
}

TEST(Synth, SameSeedSameCohortDifferentSeedDifferent) {
  const Dataset a = make_synthetic_cohort(small_options(3));
  const Dataset b = make_synthetic_cohort(small_options(3));
  const Dataset c = make_synthetic_cohort(small_options(4));
  EXPECT_EQ(a.x.values, b.x.values);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.group, b.group);
  ASSERT_EQ(a.x.values.size(), c.x.values.size());
  EXPECT_NE(a.x.values, c.x.values);
  EXPECT_NE(a.y, c.y);
}

TEST(Synth, MoreParticipantsKeepTheFirstOnes) {
  SynthOptions o = small_options();
  const Dataset a = make_synthetic_cohort(o);
  o.n_participants += 25;
  const Dataset b = make_synthetic_cohort(o);
  for (std::size_t i = 0; i < a.x.values.size(); ++i) ASSERT_EQ(a.x.values[i], b.x.values[i]) << i;
  for (std::size_t r = 0; r < a.size(); ++r) ASSERT_EQ(a.group[r], b.group[r]);
}

TEST(Synth, SizesAndSchema) {
  const SynthOptions o = small_options();
  const Dataset d = make_synthetic_cohort(o);
  const std::size_t n = 60u * 14u;
  EXPECT_EQ(d.size(), n);
  EXPECT_EQ(d.x.n_rows, n);
  EXPECT_EQ(d.x.n_cols, 12u);
  EXPECT_EQ(d.group.size(), n);
  EXPECT_EQ(d.schema.label, "high_stress");
  EXPECT_EQ(d.schema.group, "participant_id");
  const std::vector<std::string> names = {"awake_pct", "light_pct",   "deep_pct", "rem_pct",
                                          "steps_mean", "glucose_mean", "hyper_events", "tir_pct",
                                          "age",        "gender",       "medication",  "subgroup"};
  EXPECT_EQ(d.schema.names(), names);
  const std::vector<std::string> units = {"%", "%", "%", "%", "steps/min", "mg/dL", "count", "%", "years"};
  for (std::size_t j = 0; j < 12; ++j) {
    const Feature& f = d.schema.features[j];
    EXPECT_EQ(f.is_categorical(), j >= 9) << f.name;
    EXPECT_EQ(f.immutable, j >= 8) << f.name;
    if (j < 9) {
      EXPECT_EQ(f.unit, units[j]) << f.name;
    }
  }
  using V = std::vector<std::string>;
  EXPECT_EQ(d.schema.features[9].categories, (V{"female", "male"}));
  EXPECT_EQ(d.schema.features[10].categories, (V{"insulin", "no_medication", "oral"}));
  EXPECT_EQ(d.schema.features[11].categories,
            (V{"healthy", "insulin_dependent",
               "oral_medication_and_or_non_insulin_injectable_medication_controlled",
               "pre_diabetes_lifestyle_controlled"}));
  // Bounds were learned over all rows.
  for (std::size_t j = 0; j < 9; ++j) {
    double lo = 1e300, hi = -1e300;
    for (std::size_t r = 0; r < n; ++r) {
      lo = std::min(lo, d.x.at(r, j));
      hi = std::max(hi, d.x.at(r, j));
    }
    EXPECT_EQ(d.schema.features[j].lower, lo) << d.schema.features[j].name;
    EXPECT_EQ(d.schema.features[j].upper, hi) << d.schema.features[j].name;
    EXPECT_LT(lo, hi) << "constant feature " << d.schema.features[j].name;
  }
  EXPECT_FALSE(d.schema.features[11].allowed.empty());
}

TEST(Synth, ParticipantIdsLookLikeAiReadi) {
  const Dataset& d = default_cohort();
  std::set<std::string> ids(d.group.begin(), d.group.end());
  EXPECT_EQ(ids.size(), 300u);
  std::set<char> sites;
  for (const auto& id : ids) {
    ASSERT_EQ(id.size(), 4u) << id;
    EXPECT_TRUE(id[0] == '1' || id[0] == '4' || id[0] == '7') << id;
    for (char c : id) EXPECT_TRUE(c >= '0' && c <= '9') << id;
    sites.insert(id[0]);
  }
  EXPECT_EQ(sites.size(), 3u);
}

TEST(Synth, EveryValueWithinItsPhysicalRange) {
  const Dataset& d = default_cohort();
  struct Range {
    const char* name;
    double lo, hi;
  };
  const Range ranges[] = {{"awake_pct", 0, 100},    {"light_pct", 0, 100},  {"deep_pct", 0, 100},
                          {"rem_pct", 0, 100},      {"steps_mean", 0, 200}, {"glucose_mean", 40, 400},
                          {"hyper_events", 0, 8},   {"tir_pct", 0, 100},    {"age", 40, 90}};
  for (const auto& range : ranges) {
    const std::size_t j = d.schema.index_of(range.name);
    for (std::size_t r = 0; r < d.size(); ++r) {
      const double v = d.x.at(r, j);
      ASSERT_TRUE(std::isfinite(v)) << range.name << " row " << r;
      ASSERT_GE(v, range.lo) << range.name << " row " << r;
      ASSERT_LE(v, range.hi) << range.name << " row " << r;
    }
  }
  for (std::size_t r = 0; r < d.size(); ++r) {
    ASSERT_EQ(col(d, r, "hyper_events"), std::round(col(d, r, "hyper_events")));
    ASSERT_EQ(col(d, r, "age"), std::round(col(d, r, "age")));
    ASSERT_TRUE(d.y[r] == 0 || d.y[r] == 1);
  }
}

TEST(Synth, SleepPercentagesSumTo100) {
  const Dataset& d = default_cohort();
  for (std::size_t r = 0; r < d.size(); ++r) {
    const double sum = col(d, r, "awake_pct") + col(d, r, "light_pct") + col(d, r, "deep_pct") +
                       col(d, r, "rem_pct");
    ASSERT_NEAR(sum, 100.0, 1e-6) << "row " << r;
  }
  // Typical shares (aireadi.md §4): light 50-60, deep 10-20, REM 15-25, awake 3-10 %.
  double light = 0, deep = 0, rem = 0, awake = 0;
  for (std::size_t r = 0; r < d.size(); ++r) {
    light += col(d, r, "light_pct");
    deep += col(d, r, "deep_pct");
    rem += col(d, r, "rem_pct");
    awake += col(d, r, "awake_pct");
  }
  const double n = static_cast<double>(d.size());
  EXPECT_GT(light / n, 50);
  EXPECT_LT(light / n, 60);
  EXPECT_GT(deep / n, 10);
  EXPECT_LT(deep / n, 20);
  EXPECT_GT(rem / n, 15);
  EXPECT_LT(rem / n, 25);
  EXPECT_GT(awake / n, 3);
  EXPECT_LT(awake / n, 10);
}

TEST(Synth, ImmutablesConstantWithinParticipantAndMedicationFollowsSubgroup) {
  const Dataset& d = default_cohort();
  const std::map<std::string, std::string> medication_of = {
      {"healthy", "no_medication"},
      {"pre_diabetes_lifestyle_controlled", "no_medication"},
      {"oral_medication_and_or_non_insulin_injectable_medication_controlled", "oral"},
      {"insulin_dependent", "insulin"}};
  std::map<std::string, std::size_t> first_row;
  for (std::size_t r = 0; r < d.size(); ++r) {
    const auto [it, inserted] = first_row.emplace(d.group[r], r);
    for (const char* name : {"age", "gender", "medication", "subgroup"}) {
      ASSERT_EQ(col(d, r, name), col(d, it->second, name)) << name << " of " << d.group[r];
    }
    ASSERT_EQ(category(d, r, "medication"), medication_of.at(category(d, r, "subgroup")));
  }
}

TEST(Synth, PositiveRateMatchesOption) {
  for (double rate : {0.4, 0.2, 0.65}) {
    SynthOptions o = small_options();
    o.positive_rate = rate;
    const Dataset d = make_synthetic_cohort(o);
    const double share = static_cast<double>(d.count_label(1)) / static_cast<double>(d.size());
    EXPECT_NEAR(share, rate, 0.03) << "positive_rate " << rate;
  }
}

TEST(Synth, GlucoseOrderedByStudyGroup) {
  const Dataset& d = default_cohort();
  std::map<std::string, std::pair<double, double>> sum_count;
  for (std::size_t r = 0; r < d.size(); ++r) {
    auto& sc = sum_count[category(d, r, "subgroup")];
    sc.first += col(d, r, "glucose_mean");
    sc.second += 1;
  }
  ASSERT_EQ(sum_count.size(), 4u);
  auto mean = [&](const char* group) { return sum_count[group].first / sum_count[group].second; };
  const double healthy = mean("healthy");
  const double pre = mean("pre_diabetes_lifestyle_controlled");
  const double oral = mean("oral_medication_and_or_non_insulin_injectable_medication_controlled");
  const double insulin = mean("insulin_dependent");
  EXPECT_LT(healthy, pre);
  EXPECT_LT(pre, oral);
  EXPECT_LT(oral, insulin);
  // Near the AI-READI group means (119, 126, 144, 158 mg/dL).
  EXPECT_NEAR(healthy, 119.2, 8);
  EXPECT_NEAR(insulin, 157.9, 15);
}

TEST(Synth, StressScoreMovesInTheDocumentedDirection) {
  Dataset d = make_synthetic_cohort(small_options());
  auto score_after = [&](std::size_t r, const char* name, double delta) {
    const std::size_t j = d.schema.index_of(name);
    const double old = d.x.at(r, j);
    d.x.at(r, j) = old + delta;
    const double s = synthetic_stress_score(d, r);
    d.x.at(r, j) = old;
    return s;
  };
  for (std::size_t r = 0; r < d.size(); r += 7) {
    const double s = synthetic_stress_score(d, r);
    EXPECT_LT(score_after(r, "deep_pct", 3.0), s) << "row " << r;
    EXPECT_LT(score_after(r, "rem_pct", 3.0), s) << "row " << r;
    EXPECT_LT(score_after(r, "steps_mean", 5.0), s) << "row " << r;
    EXPECT_LT(score_after(r, "glucose_mean", -20.0), s) << "row " << r;
    EXPECT_GT(score_after(r, "awake_pct", 3.0), s) << "row " << r;
    EXPECT_GT(score_after(r, "hyper_events", 1.0), s) << "row " << r;
    EXPECT_LE(score_after(r, "tir_pct", std::min(10.0, 100.0 - col(d, r, "tir_pct"))), s) << "row " << r;
    EXPECT_EQ(score_after(r, "light_pct", 5.0), s) << "light_pct does not enter the score";
  }
}

TEST(Synth, LabelFollowsTheScore) {
  const Dataset& d = default_cohort();
  double pos = 0, neg = 0;
  for (std::size_t r = 0; r < d.size(); ++r) (d.y[r] ? pos : neg) += synthetic_stress_score(d, r);
  pos /= static_cast<double>(d.count_label(1));
  neg /= static_cast<double>(d.count_label(0));
  EXPECT_GT(pos - neg, 1.0);

  // Without window noise the labels still depend on the participant trait, but
  // the score separates them better than with the default noise.
  SynthOptions quiet;
  quiet.label_noise = 0.0;
  const Dataset q = make_synthetic_cohort(quiet);
  double qpos = 0, qneg = 0;
  for (std::size_t r = 0; r < q.size(); ++r) (q.y[r] ? qpos : qneg) += synthetic_stress_score(q, r);
  qpos /= static_cast<double>(q.count_label(1));
  qneg /= static_cast<double>(q.count_label(0));
  EXPECT_GT(qpos - qneg, pos - neg);
}

// Intra-class correlation (one-way ANOVA form, equal group sizes).
double icc(const Dataset& d, const char* name) {
  std::map<std::string, std::vector<double>> by_group;
  for (std::size_t r = 0; r < d.size(); ++r) by_group[d.group[r]].push_back(col(d, r, name));
  double grand = 0;
  for (std::size_t r = 0; r < d.size(); ++r) grand += col(d, r, name);
  grand /= static_cast<double>(d.size());
  double between = 0, within = 0;
  std::size_t k = 0;
  for (const auto& [g, v] : by_group) {
    double m = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    between += static_cast<double>(v.size()) * (m - grand) * (m - grand);
    for (double x : v) within += (x - m) * (x - m);
    k = v.size();
  }
  const double n_groups = static_cast<double>(by_group.size());
  const double msb = between / (n_groups - 1);
  const double msw = within / (static_cast<double>(d.size()) - n_groups);
  return (msb - msw) / (msb + (static_cast<double>(k) - 1) * msw);
}

TEST(Synth, ValuesCorrelatedWithinParticipant) {
  const Dataset& d = default_cohort();
  EXPECT_GT(icc(d, "glucose_mean"), 0.3);
  EXPECT_GT(icc(d, "deep_pct"), 0.3);
  EXPECT_GT(icc(d, "steps_mean"), 0.1);
  // ...but windows still vary: the glucose of a participant is not constant.
  EXPECT_LT(icc(d, "glucose_mean"), 0.95);
}

TEST(Synth, RoundTripsThroughCsvWithDefaultDataOptions) {
  const Dataset& d = default_cohort();
  DataOptions data;
  data.path = testing::TempDir() + "sensecf_synth_roundtrip.csv";
  write_csv(d, data.path);
  const Dataset back = read_csv(data);
  std::remove(data.path.c_str());
  ASSERT_EQ(back.size(), d.size());
  EXPECT_EQ(back.schema.names(), d.schema.names());
  EXPECT_EQ(back.group, d.group);
  EXPECT_EQ(back.y, d.y);
  for (std::size_t j = 0; j < d.schema.size(); ++j) {
    const Feature& f = d.schema.features[j];
    const Feature& g = back.schema.features[j];
    EXPECT_EQ(g.is_categorical(), f.is_categorical()) << f.name;
    EXPECT_EQ(g.immutable, f.immutable) << f.name;
    EXPECT_EQ(g.categories, f.categories) << f.name;
    for (std::size_t r = 0; r < d.size(); ++r) {
      ASSERT_NEAR(back.x.at(r, j), d.x.at(r, j), 1e-9) << f.name << " row " << r;
    }
  }
}

TEST(Synth, OptionsParseAndReject) {
  {
    SynthOptions s;
    Options options("synth", "test");
    declare_options(options, s);
    ASSERT_TRUE(options.parse({"--participants", "50", "--synth.windows", "6", "--synth.positive-rate",
                               "0.3", "--synth.label_noise", "0.5", "--synth.seed", "11"}));
    EXPECT_EQ(s.n_participants, 50);
    EXPECT_EQ(s.windows_per_participant, 6);
    EXPECT_DOUBLE_EQ(s.positive_rate, 0.3);
    EXPECT_DOUBLE_EQ(s.label_noise, 0.5);
    EXPECT_EQ(s.seed, 11ul);
  }
  const std::vector<std::vector<std::string>> bad = {{"--participants", "9"},
                                                     {"--synth.windows", "0"},
                                                     {"--synth.positive_rate", "0"},
                                                     {"--synth.positive_rate", "1"},
                                                     {"--synth.label_noise", "-0.1"}};
  for (const auto& args : bad) {
    SynthOptions s;
    Options options("synth", "test");
    declare_options(options, s);
    EXPECT_THROW(options.parse(args), UsageError) << args[0] << " " << args[1];
  }
}

}  // namespace
}  // namespace sensecf::data
