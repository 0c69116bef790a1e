// Unit tests of the DiCE generators (cf/dice_*.cpp): random, genetic, kdtree
// (XGBoost black box) and gradient (the NN), on a small synthetic cohort.
//
// For every method: every CF is valid, has no constraint violation and keeps
// the immutables, at most n_cfs come back, results repeat for a seed and do not
// depend on the thread count, and post-hoc sparsity never increases the number
// of changed features (compared CF by CF with dice_posthoc_sparsity = 0).
// Method-specific: kdtree CFs without post-hoc are training rows; the genetic
// mutation reaches values above the lower bound (dice-ml's uniform(lo, lo) bug)
// and a target no row reaches ends the bounded random init instead of looping;
// gradient refuses a non-NN model with a clear error; a mutable categorical
// stays inside its permitted codes; a kdtree CF matches dice-ml's to the last
// digit (float32 columns, numpy rounding; values from dice-ml itself). The
// shared helpers (precision from the modes, numpy quantile/median/round) are
// checked against values numpy/pandas give.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "../../src/cf/dice_common.h"  // internal helpers, tested directly below
#include "sensecf/cf/dice.h"
#include "sensecf/cf/generator.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/core/error.h"
#include "sensecf/data/split.h"
#include "sensecf/data/synth.h"
#include "test_util.h"

namespace sensecf::cf {
namespace {

// A small cohort with an XGBoost and an NN black box. Built once and never
// destroyed: freeing an XGBoost booster during static destruction, after
// libxgboost's own statics are gone, crashes the process at exit.
struct Cohort {
  data::Dataset data;
  data::Matrix train_x;
  std::vector<int> train_y;
  data::Matrix test_x;
  std::unique_ptr<clf::Classifier> xgb, nn;
};

const Cohort& cohort() {
  static const Cohort* cohort_data = [] {
    auto* c_ptr = new Cohort;
    Cohort& c = *c_ptr;
    data::SynthOptions synth;
    synth.n_participants = 60;
    synth.seed = 11;
    c.data = data::make_synthetic_cohort(synth);
    const auto split = data::patient_split(c.data, 0.25, 3);
    c.train_x = c.data.x.rows(split.train);
    for (std::size_t r : split.train) c.train_y.push_back(c.data.y[r]);
    c.test_x = c.data.x.rows(split.test);
    clf::ClfOptions o;
    o.threads = 1;
    o.seed = 5;
    o.model = "xgb";
    o.xgb_rounds = 40;
    c.xgb = clf::make_classifier(o);
    c.xgb->fit(c.data.schema, c.train_x, c.train_y);
    o.model = "nn";
    o.nn_max_epochs = 20;
    o.nn_hidden = {16, 8};
    c.nn = clf::make_classifier(o);
    c.nn->fit(c.data.schema, c.train_x, c.train_y);
    return c_ptr;
  }();
  return *cohort_data;
}

struct Queries {
  data::Matrix x;
  std::vector<int> targets;
};

// n queries spread over the test rows, or over the training rows (`from_train`:
// kdtree CFs must share the query's immutables, i.e. come from the same
// participant, and a test participant has no training rows).
Queries queries_for(const clf::Classifier& model, std::size_t n, bool from_train = false) {
  const Cohort& c = cohort();
  const data::Matrix& source = from_train ? c.train_x : c.test_x;
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < n && r < source.n_rows; ++r) rows.push_back(r * (source.n_rows / n));
  Queries q;
  q.x = source.rows(rows);
  for (int y : clf::predict(model, q.x)) q.targets.push_back(1 - y);
  return q;
}

CfOptions dice_options(const std::string& method) {
  CfOptions o;
  o.method = method;
  o.n_cfs = 3;
  o.seed = 21;
  o.threads = 1;
  o.dice.gradient_min_iter = 50;  // dice-ml's 500 / 5000 make the test slow, not different
  o.dice.gradient_max_iter = 200;
  return o;
}

std::vector<QueryResult> run(const CfOptions& options, const clf::Classifier& model, const Queries& q,
                             const data::Schema* schema = nullptr) {
  const Cohort& c = cohort();
  const BlackBox f(model);
  Context context;
  context.f = &f;
  context.schema = schema ? schema : &c.data.schema;
  context.train_x = &c.train_x;
  context.train_y = &c.train_y;
  auto generator = make_generator(options);
  generator->prepare(context);
  return explain_all(*generator, context, q.x, q.targets, options);
}

int n_changed(const std::vector<double>& x, const std::vector<double>& cf) {
  int n = 0;
  for (std::size_t j = 0; j < x.size(); ++j) n += cf[j] != x[j];
  return n;
}

// Valid, no violations, immutables kept, at most n_cfs; returns the CF count.
std::size_t check_results(const std::vector<QueryResult>& results, const Queries& q,
                          const data::Schema& schema, int n_cfs) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const std::vector<double> x(q.x.row(i), q.x.row(i) + q.x.n_cols);
    EXPECT_LE(results[i].cfs.size(), static_cast<std::size_t>(n_cfs)) << "query " << i;
    if (results[i].cfs.empty()) {
      EXPECT_FALSE(results[i].note.empty()) << "query " << i;
    }
    for (const auto& cf : results[i].cfs) {
      EXPECT_TRUE(cf.valid) << "query " << i << " p1 " << cf.p1 << " target " << q.targets[i];
      EXPECT_EQ(count_violations(schema, x, cf.x), 0) << "query " << i;
      for (std::size_t j = 0; j < schema.size(); ++j) {
        if (schema.features[j].immutable) {
          EXPECT_EQ(cf.x[j], x[j]) << schema.features[j].name;
        }
      }
      EXPECT_GT(n_changed(x, cf.x), 0) << "query " << i << ": a CF equal to the query";
    }
    total += results[i].cfs.size();
  }
  return total;
}

void expect_same(const std::vector<QueryResult>& a, const std::vector<QueryResult>& b,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].cfs.size(), b[i].cfs.size()) << what << ", query " << i;
    for (std::size_t k = 0; k < a[i].cfs.size(); ++k)
      EXPECT_EQ(a[i].cfs[k].x, b[i].cfs[k].x) << what << ", query " << i;
  }
}

// Post-hoc sparsity only moves changed features towards the query: CF by CF it
// never changes more features than the same run without it.
void expect_posthoc_no_worse(const std::vector<QueryResult>& with, const std::vector<QueryResult>& without,
                             const Queries& q) {
  int changed_with = 0, changed_without = 0;
  for (std::size_t i = 0; i < with.size(); ++i) {
    const std::vector<double> x(q.x.row(i), q.x.row(i) + q.x.n_cols);
    ASSERT_EQ(with[i].cfs.size(), without[i].cfs.size()) << "query " << i;
    for (std::size_t k = 0; k < with[i].cfs.size(); ++k) {
      EXPECT_LE(n_changed(x, with[i].cfs[k].x), n_changed(x, without[i].cfs[k].x))
          << "query " << i << " CF " << k;
      changed_with += n_changed(x, with[i].cfs[k].x);
      changed_without += n_changed(x, without[i].cfs[k].x);
    }
  }
  EXPECT_LE(changed_with, changed_without);
}

// The shared checks of one model-agnostic or gradient method.
void check_method(const std::string& method, const clf::Classifier& model, std::size_t n_queries) {
  const Queries q = queries_for(model, n_queries, method == "dice-kdtree");
  CfOptions o = dice_options(method);
  const auto results = run(o, model, q);
  const std::size_t total = check_results(results, q, cohort().data.schema, o.n_cfs);
  // kdtree only accepts training rows with the query's immutables (same
  // participant) among its 10 n_cfs nearest: several queries get none.
  EXPECT_GE(total, method == "dice-kdtree" ? 3 : n_queries) << method << " found too few CFs";

  expect_same(results, run(o, model, q), method + ": same seed twice");
  o.threads = 4;
  expect_same(results, run(o, model, q), method + ": 1 vs 4 threads");
  o.threads = 1;
  o.dice.posthoc_sparsity = 0.0;
  const auto without = run(o, model, q);
  if (method != "dice-genetic") {
    expect_posthoc_no_worse(results, without, q);
  } else {
    expect_same(results, without, "genetic ignores post-hoc sparsity");
  }
}

TEST(DiceRandom, ValidDeterministicSparse) { check_method("dice-random", *cohort().xgb, 10); }
TEST(DiceGenetic, ValidDeterministic) { check_method("dice-genetic", *cohort().xgb, 10); }
TEST(DiceKdTree, ValidDeterministicSparse) { check_method("dice-kdtree", *cohort().xgb, 10); }
TEST(DiceGradient, ValidDeterministicSparse) { check_method("dice-gradient", *cohort().nn, 5); }

TEST(DiceRandom, BinaryPosthocSearch) {
  const Cohort& c = cohort();
  const Queries q = queries_for(*c.xgb, 6);
  CfOptions o = dice_options("dice-random");
  o.dice.posthoc_algorithm = "binary";
  const auto results = run(o, *c.xgb, q);
  EXPECT_GE(check_results(results, q, c.data.schema, o.n_cfs), 6u);
  o.dice.posthoc_sparsity = 0.0;
  expect_posthoc_no_worse(results, run(o, *c.xgb, q), q);
}

// The numpy / pandas conventions DiCE's shared machinery depends on.
TEST(DiceCommon, PrecisionQuantileMedian) {
  EXPECT_EQ(dice::float32_decimals(45.300000000000004), 1);
  EXPECT_EQ(dice::float32_decimals(3.0), 1);  // str(3.0) == '3.0'
  EXPECT_EQ(dice::float32_decimals(0.25), 2);
  EXPECT_EQ(dice::float32_decimals(1e-5), 5);
  EXPECT_EQ(dice::decimal_precision({1, 2, 2, 3}), 0);       // an int column
  EXPECT_EQ(dice::decimal_precision({1.25, 1.5, 1.5}), 1);   // the mode 1.5
  EXPECT_EQ(dice::decimal_precision({0.1, 0.25, 7.0}), 2);   // all are modes
  EXPECT_DOUBLE_EQ(dice::quantile({4, 1, 3, 2}, 0.1), 1.3);  // np.quantile, linear
  EXPECT_DOUBLE_EQ(dice::quantile({5}, 0.1), 5.0);
  EXPECT_DOUBLE_EQ(dice::median({3, 1, 2, 10}), 2.5);
  EXPECT_DOUBLE_EQ(dice::round_to(2.345, 1), 2.3);
  EXPECT_TRUE(dice::is_valid(0.5, 0));
  EXPECT_TRUE(dice::is_valid(0.5, 1));
  EXPECT_FALSE(dice::is_valid(0.49, 1));
}

TEST(DiceKdTree, WithoutPosthocCfsAreTrainingRows) {
  const Cohort& c = cohort();
  const Queries q = queries_for(*c.xgb, 10, true);
  CfOptions o = dice_options("dice-kdtree");
  o.dice.posthoc_sparsity = 0.0;
  const auto results = run(o, *c.xgb, q);
  std::size_t n = 0;
  for (const auto& r : results) {
    for (const auto& cf : r.cfs) {
      bool found = false;
      for (std::size_t t = 0; t < c.train_x.n_rows && !found; ++t) {
        bool same = true;
        for (std::size_t j = 0; j < cf.x.size() && same; ++j)
          same = std::abs(cf.x[j] - c.train_x.at(t, j)) < 1e-6;
        found = same;
      }
      EXPECT_TRUE(found) << "query " << r.query << ": a kdtree CF that is no training row";
      ++n;
    }
  }
  EXPECT_GT(n, 0u);
}

TEST(DiceGradient, RefusesANonNnModel) {
  const Cohort& c = cohort();
  const BlackBox f(*c.xgb);
  Context context;
  context.f = &f;
  context.schema = &c.data.schema;
  context.train_x = &c.train_x;
  context.train_y = &c.train_y;
  auto generator = make_dice_gradient(dice_options("dice-gradient"));
  EXPECT_THROW_WITH(generator->prepare(context), Error, "is not the NN");
}

// A mutable categorical feature (medication) stays inside its permitted codes.
TEST(Dice, MutableCategoricalStaysPermitted) {
  const Cohort& c = cohort();
  data::Schema schema = c.data.schema;
  const std::size_t med = schema.index_of("medication");
  schema.features[med].immutable = false;
  schema.features[med].allowed = {0, 1};  // one code is not permitted
  const Queries q = queries_for(*c.xgb, 6);
  for (const std::string method : {"dice-random", "dice-genetic", "dice-kdtree"}) {
    const auto results = run(dice_options(method), *c.xgb, q, &schema);
    check_results(results, q, schema, 3);
    for (const auto& r : results)
      for (const auto& cf : r.cfs) EXPECT_NE(cf.x[med], 2.0) << method;
  }
  const Queries qn = queries_for(*c.nn, 3);
  const auto results = run(dice_options("dice-gradient"), *c.nn, qn, &schema);
  check_results(results, qn, schema, 3);
}

// p1 = 0.9 where a >= 5, else 0.1 (or always `constant` when set).
class StepOnA final : public clf::Classifier {
 public:
  explicit StepOnA(double constant = -1) : constant_(constant) {}
  std::string kind() const override { return "step"; }
  void fit(const data::Schema&, const data::Matrix&, const std::vector<int>&) override {}
  std::vector<double> predict_proba(const data::Matrix& x) const override {
    std::vector<double> p(x.n_rows);
    for (std::size_t r = 0; r < x.n_rows; ++r)
      p[r] = constant_ >= 0 ? constant_ : (x.at(r, 0) >= 5.0 ? 0.9 : 0.1);
    return p;
  }
  void save(const std::string&) const override {}
  void load(const std::string&, const data::Schema&) override {}

 private:
  double constant_;
};

// Feature a in [0, 10] (mutable), c immutable; training rows have a in
// [0, 4] or [8, 10] only, so the kd-tree initialisation fills the whole
// population with a >= 8. A CF with 5 <= a < 8 is closer to the query and can
// only come from a mutation: dice-ml's uniform(lo, lo) always gives a = 0.
struct StepProblem {
  data::Schema schema;
  data::Matrix train_x;
  std::vector<int> train_y;
};

StepProblem step_problem() {
  StepProblem p;
  data::Feature a = test::feature("a"), c = test::feature("c");
  a.lower = 0.0;
  a.upper = 10.0;
  c.lower = 0.0;
  c.upper = 10.0;
  c.immutable = true;
  p.schema.features = {a, c};
  std::vector<double> values;
  for (int i = 0; i <= 40; ++i) values.push_back(i / 10.0);
  for (int i = 80; i <= 100; ++i) values.push_back(i / 10.0);
  p.train_x = data::Matrix(values.size(), 2);
  for (std::size_t r = 0; r < values.size(); ++r) {
    p.train_x.at(r, 0) = values[r];
    p.train_x.at(r, 1) = 1.5 + 0.1 * static_cast<double>(r % 7);
    p.train_y.push_back(values[r] >= 5.0 ? 1 : 0);
  }
  return p;
}

TEST(DiceGenetic, MutationReachesValuesAboveTheLowerBound) {
  const StepProblem p = step_problem();
  const StepOnA model;
  const BlackBox f(model);
  Context context{&f, &p.schema, &p.train_x, &p.train_y};
  CfOptions o = dice_options("dice-genetic");
  o.n_cfs = 2;
  Queries q;
  q.x = data::Matrix(3, 2);
  for (std::size_t i = 0; i < 3; ++i) {
    q.x.at(i, 0) = 1.0 + static_cast<double>(i);
    q.x.at(i, 1) = 1.5;
    q.targets.push_back(1);
  }
  auto generator = make_dice_genetic(o);
  generator->prepare(context);
  const auto results = explain_all(*generator, context, q.x, q.targets, o);
  check_results(results, q, p.schema, o.n_cfs);
  int n_mutated = 0;
  for (const auto& r : results)
    for (const auto& cf : r.cfs) n_mutated += cf.x[0] >= 5.0 && cf.x[0] < 8.0;
  EXPECT_GT(n_mutated, 0) << "no CF with 5 <= a < 8: mutation never left the training values / lower bound";
}

TEST(DiceGenetic, UnreachableTargetEndsWithANote) {
  const StepProblem p = step_problem();
  const StepOnA never(0.1);  // class 1 is never predicted
  const BlackBox f(never);
  Context context{&f, &p.schema, &p.train_x, &p.train_y};
  CfOptions o = dice_options("dice-genetic");
  Queries q;
  q.x = data::Matrix(1, 2);
  q.x.at(0, 0) = 2.0;
  q.x.at(0, 1) = 1.5;
  q.targets = {1};
  auto generator = make_dice_genetic(o);
  generator->prepare(context);
  const auto results = explain_all(*generator, context, q.x, q.targets, o);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].cfs.empty());
  EXPECT_NE(results[0].note.find("initial population"), std::string::npos) << results[0].note;
}

// p1 = 0.9 where t (feature 1) >= 3.5, else 0.1.
class StepOnT final : public clf::Classifier {
 public:
  std::string kind() const override { return "step"; }
  void fit(const data::Schema&, const data::Matrix&, const std::vector<int>&) override {}
  std::vector<double> predict_proba(const data::Matrix& x) const override {
    std::vector<double> p(x.n_rows);
    for (std::size_t r = 0; r < x.n_rows; ++r) p[r] = x.at(r, 1) >= 3.5 ? 0.9 : 0.1;
    return p;
  }
  void save(const std::string&) const override {}
  void load(const std::string&, const data::Schema&) override {}
};

// dice-ml holds float columns as float32 and rounds with numpy (half to even on
// the scaled binary value); the kdtree CF must come out as dice-ml's. Rows,
// query and model are those of bench/parity/dice_kdtree_golden.py, whose run of
// dice-ml 0.12 (kdtree, defaults, total_CFs=1, features_to_vary=[a, t]) gave the
// expected CF (4.5099, 3.8, 50), precisions (4, 1, 0). The training row picked
// is (4.4773, 3.85, 50):
//   - a: post-hoc sparsity steps 1e-4 from float32(4.4773) towards
//     float32(4.5109) while |diff| > 1e-3; the float32 ends stop it at 4.5099,
//     float64 ends take one more step (4.51);
//   - t: 3.85 at precision 1 is 3.8 (float32 3.8499999 rounds down; float64
//     3.85 * 10 is exactly 38.5, which half away from zero takes to 3.9).
TEST(DiceKdTree, RoundsLikeDiceMl) {
  data::Schema schema;
  data::Feature a = test::feature("a"), t = test::feature("t"), c = test::feature("c");
  c.immutable = true;
  const std::vector<std::array<double, 3>> rows = {
      {4.4773, 3.85, 50}, {4.2, 3.6, 60},  {4.9, 4.0, 40},  {4.3, 2.0, 50}, {4.6, 2.5, 45},  {4.25, 3.0, 55},
      {4.65, 2.0, 52},    {4.7, 2.2, 48},  {4.35, 2.0, 51}, {4.75, 2.8, 53}, {4.4, 1.5, 47}, {4.8, 3.2, 49}};
  data::Matrix train_x(rows.size(), 3);
  std::vector<int> train_y;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t j = 0; j < 3; ++j) train_x.at(r, j) = rows[r][j];
    train_y.push_back(rows[r][1] >= 3.5 ? 1 : 0);
  }
  a.lower = 4.2, a.upper = 4.9;  // the training ranges (dice-ml's permitted range)
  t.lower = 1.5, t.upper = 4.0;
  c.lower = 40, c.upper = 60;
  schema.features = {a, t, c};
  const StepOnT model;
  const BlackBox f(model);
  Context context{&f, &schema, &train_x, &train_y};
  CfOptions o = dice_options("dice-kdtree");
  o.n_cfs = 1;
  data::Matrix query(1, 3);
  query.at(0, 0) = 4.5109;
  query.at(0, 1) = 2.0;
  query.at(0, 2) = 50;
  auto generator = make_dice_kdtree(o);
  generator->prepare(context);
  const auto results = explain_all(*generator, context, query, {1}, o);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].cfs.size(), 1u) << results[0].note;
  const std::vector<double>& cf = results[0].cfs[0].x;
  EXPECT_EQ(cf[0], 4.5099);  // the double nearest 4.5099, as numpy's round gives it
  EXPECT_EQ(cf[1], 3.8);
  EXPECT_EQ(cf[2], 50.0);
}

// numpy's round(v, d): rint(v * 10^d) / 10^d, ties to even on the scaled value
// (np.round(2.5) == 2.0, np.round(4.25, 1) == 4.2, np.round(-0.125, 2) == -0.12).
TEST(DiceCommon, RoundsLikeNumpy) {
  EXPECT_EQ(dice::round_to(2.5, 0), 2.0);
  EXPECT_EQ(dice::round_to(3.5, 0), 4.0);
  EXPECT_EQ(dice::round_to(4.25, 1), 4.2);
  EXPECT_EQ(dice::round_to(-0.125, 2), -0.12);
  EXPECT_EQ(dice::round_to(3.85, 1), 3.8);  // 3.85 * 10 == 38.5 in float64
  EXPECT_EQ(dice::round_to(static_cast<float>(2.65), 1), 2.7);  // float32 2.6500001
  EXPECT_EQ(dice::round_to(2.65, 1), 2.6);                      // float64 2.6499999...
}

}  // namespace
}  // namespace sensecf::cf
