// The SenseCF prompt (Fig. 4) and the choice of its few-shot examples.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "sensecf/cf/metrics.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/synth.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/parse.h"
#include "sensecf/llmcf/prompt.h"
#include "cf_cohort.h"
#include "test_util.h"

namespace sensecf::llmcf {
namespace {

const data::Dataset& cohort() {
  static const data::Dataset d = test::bounded_cohort(20, 6, 3);
  return d;
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// The text between `from` (excluded) and the next `to`.
std::string section(const std::string& s, const std::string& from, const std::string& to) {
  const auto b = s.find(from);
  if (b == std::string::npos) return {};
  const auto e = s.find(to, b + from.size());
  return s.substr(b + from.size(), e == std::string::npos ? e : e - b - from.size());
}

TEST(LlmcfPrompt, FollowsFigure4) {
  const auto& d = cohort();
  const double* x = d.x.row(0);
  const Prompt p = build_prompt(d.schema, x, 1, 0, {}, PromptOptions{});
  EXPECT_EQ(p.system, "You are an expert in generating counterfactual explanations to understand model predictions.");
  const std::string& u = p.user;
  EXPECT_EQ(u.rfind("Task: Given a structured tabular instance where a trained black-box model has predicted "
                    "label = 1 (high stress), the undesired outcome, generate a counterfactual explanation",
                    0),
            0u)
      << u;
  EXPECT_NE(u.find("the predicted label flips to 0 (moderate stress), the desired outcome.\n\n"), std::string::npos);
  EXPECT_NE(u.find("Definition: A counterfactual explanation reveals what should have been different"),
            std::string::npos);
  EXPECT_NE(u.find("Now consider the following instance where the model predicted label 1 (high stress):\n"),
            std::string::npos);
  EXPECT_NE(u.find("Instruction: Modify the instance minimally to flip the label from 1 (high stress) to 0 "
                   "(moderate stress). Only adjust features not listed under \"Fixed Features\""),
            std::string::npos);
  EXPECT_NE(u.find("Give every feature exactly once"), std::string::npos);
  EXPECT_NE(u.find("Enclose your output within <new> tags exactly as shown:\n\n<new>\n"), std::string::npos);
  // The sections in the figure's order.
  std::size_t last = 0;
  for (const char* s : {"Task:", "Definition:", "Fixed Features:", "Now consider", "Instruction:", "<new>"}) {
    const auto at = u.find(s);
    ASSERT_NE(at, std::string::npos) << s;
    EXPECT_GE(at, last) << s;
    last = at;
  }
  EXPECT_EQ(plain_text(p), p.system + "\n\n" + p.user + "\n\n");
  EXPECT_TRUE(ends_with(plain_text(p), "</new>\n\n"));
}

TEST(LlmcfPrompt, InstanceHasEveryFeatureLineAndTheSkeletonEveryLabel) {
  const auto& d = cohort();
  for (std::size_t r : {0u, 7u, 42u}) {
    const double* x = d.x.row(r);
    const Prompt p = build_prompt(d.schema, x, 0, 1, {}, PromptOptions{});
    const std::string instance = section(p.user, "predicted label 0 (moderate stress):\n", "\n\n");
    std::string expected;
    for (std::size_t j = 0; j < d.schema.size(); ++j) expected += format_line(d.schema.features[j], x[j]);
    EXPECT_EQ(instance + "\n", expected);
    // The instance, as written, is an answer the parser reads back.
    const auto back = parse_answer(d.schema, x, "<new>\n" + instance + "\n</new>");
    ASSERT_TRUE(back.ok) << back.error;
    const std::string skeleton = section(p.user, "exactly as shown:\n\n<new>\n", "</new>");
    for (std::size_t j = 0; j < d.schema.size(); ++j) {
      const auto& f = d.schema.features[j];
      EXPECT_NE(p.user.find(feature_label(f)), std::string::npos) << f.name;
      const std::string line = f.immutable ? format_line(f, x[j])
                               : f.is_categorical() ? "- " + feature_label(f) + ": <one of: " + join(f.categories, ", ") + ">\n"
                                                    : "- " + feature_label(f) + ": <number>\n";
      EXPECT_NE(skeleton.find(line), std::string::npos) << line << "\nnot in\n" << skeleton;
    }
    EXPECT_EQ(count(skeleton, "\n"), d.schema.size());
    EXPECT_NE(p.user.find("- steps_mean (steps/min): "), std::string::npos);
    EXPECT_NE(p.user.find("- glucose_mean (mg/dL): "), std::string::npos);
  }
}

TEST(LlmcfPrompt, FixedFeaturesAreExactlyTheImmutables) {
  const auto& d = cohort();
  const Prompt p = build_prompt(d.schema, d.x.row(0), 1, 0, {}, PromptOptions{});
  const std::string fixed = section(p.user, "Fixed Features: Do not modify these features: ", ".\n");
  std::vector<std::string> immutables;
  for (const auto& f : d.schema.features)
    if (f.immutable) immutables.push_back(feature_label(f));
  EXPECT_EQ(immutables, (std::vector<std::string>{"age (years)", "gender", "medication", "subgroup"}));
  EXPECT_EQ(split_list(fixed, ','), immutables);

  data::Schema free;
  free.features = {test::feature("a"), test::feature("b")};
  const std::vector<double> x = {1, 2};
  const Prompt q = build_prompt(free, x.data(), 1, 0, {}, PromptOptions{});
  EXPECT_NE(q.user.find("Fixed Features: Do not modify these features: none.\n"), std::string::npos);
}

TEST(LlmcfPrompt, ZeroShotHasNoExamplesSection) {
  const auto& d = cohort();
  const Prompt p = build_prompt(d.schema, d.x.row(0), 1, 0, {}, PromptOptions{});
  EXPECT_EQ(p.user.find("Example"), std::string::npos);
  EXPECT_EQ(p.user.find("example"), std::string::npos);
  EXPECT_EQ(count(p.user, "<new>"), 2u);  // the instruction's mention and the skeleton
}

TEST(LlmcfPrompt, FewShotShowsKExamplesInTheAnswerFormat) {
  const auto& d = cohort();
  const std::size_t q = 5;
  const int desired = 1 - d.y[q];
  PromptOptions o;
  o.shots = 3;
  Rng rng(1);
  const auto chosen = choose_examples(d.schema, d.x, d.y, d.x.row(q), desired, o.shots, o.shot_choice, rng);
  ASSERT_EQ(chosen.size(), 3u);
  std::vector<const double*> rows;
  for (std::size_t i : chosen) {
    EXPECT_EQ(d.y[i], desired);
    rows.push_back(d.x.row(i));
  }
  const Prompt p = build_prompt(d.schema, d.x.row(q), 1 - desired, desired, rows, o);
  EXPECT_NE(p.user.find("Here are a few examples with desired outcome " + class_text(desired, o) + ":\n\n"),
            std::string::npos);
  for (std::size_t e = 0; e < rows.size(); ++e) {
    const std::string shown = "Example " + std::to_string(e + 1) + ":\n" + format_answer(d.schema, rows[e]) + "\n";
    EXPECT_NE(p.user.find(shown), std::string::npos) << shown;
    const auto back = parse_answer(d.schema, rows[e], section(p.user, shown.substr(0, 11), "\n\n"));
    ASSERT_TRUE(back.ok) << back.error;
    for (std::size_t j = 0; j < d.schema.size(); ++j)
      EXPECT_EQ(back.x[j], round_value(d.schema.features[j], rows[e][j]));
  }
  EXPECT_EQ(count(p.user, "Example "), 3u);
  EXPECT_EQ(count(p.user, "<new>"), 3u + 2u);
  EXPECT_LT(p.user.find("Example 3:"), p.user.find("Now consider"));
}

TEST(LlmcfPrompt, ClassNamesAreOptions) {
  const auto& d = cohort();
  PromptOptions o;
  o.label1 = "stressed";
  o.label0 = "calm";
  const Prompt p = build_prompt(d.schema, d.x.row(0), 0, 1, {}, o);
  EXPECT_NE(p.user.find("predicted label = 0 (calm)"), std::string::npos);
  EXPECT_NE(p.user.find("flip the label from 0 (calm) to 1 (stressed)"), std::string::npos);
  EXPECT_EQ(p.user.find("stress)"), std::string::npos);
}

TEST(LlmcfPrompt, RefusesLabelsThatDoNotFlip) {
  const auto& d = cohort();
  EXPECT_THROW_WITH(build_prompt(d.schema, d.x.row(0), 1, 1, {}, {}), Error, "both 1");
  EXPECT_THROW_WITH(build_prompt(d.schema, d.x.row(0), 2, 0, {}, {}), Error, "predicted label must be 0 or 1, got 2");
  PromptOptions o;
  o.shot_choice = "closest";
  EXPECT_THROW_WITH(validate(o), UsageError, "'nearest' or 'random', got 'closest'");
  o = {};
  o.shots = -1;
  EXPECT_THROW_WITH(validate(o), UsageError, "shots must be >= 0");
  EXPECT_NO_THROW(validate(PromptOptions{}));
}

// Brute force: rows of class `desired` (only those with x's immutables when
// there are at least k), sorted by (cf_distance, index), the first k.
std::vector<std::size_t> brute_nearest(const data::Schema& s, const data::Matrix& m, const std::vector<int>& y,
                                       const double* x, int desired, std::size_t k) {
  std::vector<std::size_t> all, alike;
  for (std::size_t i = 0; i < m.n_rows; ++i) {
    if (y[i] != desired) continue;
    all.push_back(i);
    bool same = true;
    for (std::size_t j = 0; j < s.size(); ++j) same = same && (!s.features[j].immutable || m.at(i, j) == x[j]);
    if (same) alike.push_back(i);
  }
  auto& pool = alike.size() >= std::min(k, all.size()) ? alike : all;
  std::sort(pool.begin(), pool.end(), [&](std::size_t a, std::size_t b) {
    const double da = cf::cf_distance(s, x, m.row(a)), db = cf::cf_distance(s, x, m.row(b));
    return da != db ? da < db : a < b;
  });
  pool.resize(std::min(k, pool.size()));
  return pool;
}

TEST(LlmcfPrompt, NearestExamplesAreTheTrulyNearestOfTheDesiredClass) {
  const auto& d = cohort();
  Rng rng(0);
  for (std::size_t q = 0; q < 30; ++q) {
    const int desired = 1 - d.y[q];
    for (int k : {1, 3, 8}) {
      const auto got = choose_examples(d.schema, d.x, d.y, d.x.row(q), desired, k, "nearest", rng);
      EXPECT_EQ(got, brute_nearest(d.schema, d.x, d.y, d.x.row(q), desired, static_cast<std::size_t>(k)))
          << "query " << q << " k " << k;
      EXPECT_EQ(got.size(), static_cast<std::size_t>(k));
      for (std::size_t i : got) EXPECT_EQ(d.y[i], desired);
    }
  }
}

// A hand-made case where the preference for equal immutables and the ties matter.
struct Tiny {
  data::Schema schema;
  data::Matrix x{6, 2};
  std::vector<int> y = {0, 0, 0, 1, 0, 0};
  Tiny() {
    schema.features = {test::feature("a"), test::feature("age")};
    schema.features[0].upper = 10;
    schema.features[1].upper = 100;
    schema.features[1].immutable = true;
    const double rows[6][2] = {{1, 51}, {2, 50}, {4, 50}, {1, 50}, {6, 50}, {2, 50}};
    for (std::size_t i = 0; i < 6; ++i) std::copy(rows[i], rows[i] + 2, x.row(i));
  }
};

TEST(LlmcfPrompt, NearestPrefersEqualImmutablesWhenThereAreEnough) {
  const Tiny t;
  const double q[2] = {1, 50};
  Rng rng(0);
  using V = std::vector<std::size_t>;
  // Rows 1, 2, 4, 5 share age 50: enough for k = 2; 1 and 5 tie (index order).
  EXPECT_EQ(choose_examples(t.schema, t.x, t.y, q, 0, 2, "nearest", rng), (V{1, 5}));
  EXPECT_EQ(choose_examples(t.schema, t.x, t.y, q, 0, 4, "nearest", rng), (V{1, 5, 2, 4}));
  // Not enough for k = 5: every row of class 0, row 0 (age 51) nearest.
  EXPECT_EQ(choose_examples(t.schema, t.x, t.y, q, 0, 5, "nearest", rng), (V{0, 1, 5, 2, 4}));
  EXPECT_EQ(choose_examples(t.schema, t.x, t.y, q, 0, 9, "nearest", rng), (V{0, 1, 5, 2, 4}));
  EXPECT_EQ(choose_examples(t.schema, t.x, t.y, q, 1, 3, "nearest", rng), (V{3}));
  EXPECT_TRUE(choose_examples(t.schema, t.x, t.y, q, 0, 0, "nearest", rng).empty());
  EXPECT_THROW_WITH(choose_examples(t.schema, t.x, t.y, q, 0, 2, "farthest", rng), UsageError, "got 'farthest'");
  const std::vector<int> short_y = {0, 1};
  EXPECT_THROW_WITH(choose_examples(t.schema, t.x, short_y, q, 0, 2, "nearest", rng), Error, "6 training rows but 2");
}

TEST(LlmcfPrompt, RandomExamplesAreDeterministicForASeed) {
  const auto& d = cohort();
  const double* x = d.x.row(0);
  std::vector<std::vector<std::size_t>> draws;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    Rng a(seed), b(seed);
    const auto first = choose_examples(d.schema, d.x, d.y, x, 1, 5, "random", a);
    EXPECT_EQ(first, choose_examples(d.schema, d.x, d.y, x, 1, 5, "random", b));
    ASSERT_EQ(first.size(), 5u);
    auto sorted = first;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "a row drawn twice";
    for (std::size_t i : first) EXPECT_EQ(d.y[i], 1);
    draws.push_back(first);
  }
  EXPECT_NE(draws[0], draws[1]);
  // All of a small class.
  const Tiny t;
  Rng rng(9);
  const double q[2] = {1, 50};
  auto all = choose_examples(t.schema, t.x, t.y, q, 0, 10, "random", rng);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::size_t>{0, 1, 2, 4, 5}));
}

}  // namespace
}  // namespace sensecf::llmcf
