// Unit tests of NICE (cf/nice.cpp) and its autoencoder (cf/autoencoder.cpp).
//
// A hand-computed three-feature case with a linear black box pins the NUN
// (justified or not) and the best-first paths of the sparsity and proximity
// rewards. On a small synthetic cohort with XGBoost (and once with the NN):
// nice-none returns the HEOM-nearest correctly classified training row of the
// target class (brute force here), every CF of every reward is valid, in range
// and keeps the immutables, sparsity changes no more features than the NUN,
// and results do not depend on the run or the thread count. Also: an empty
// pool and an unreachable target give no CF and a note; the autoencoder
// reconstructs training rows better than noise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "sensecf/cf/autoencoder.h"
#include "sensecf/cf/generator.h"
#include "sensecf/cf/nice.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "cf_cohort.h"
#include "test_util.h"

namespace sensecf::cf {
namespace {

// p1 = clamp(b0 + w . x, 0, 1): a transparent black box.
class LinearClip final : public clf::Classifier {
 public:
  LinearClip(double b0, std::vector<double> w) : b0_(b0), w_(std::move(w)) {}
  std::string kind() const override { return "linear-clip"; }
  void fit(const data::Schema&, const data::Matrix&, const std::vector<int>&) override {}
  std::vector<double> predict_proba(const data::Matrix& x) const override {
    std::vector<double> p(x.n_rows);
    for (std::size_t r = 0; r < x.n_rows; ++r) {
      double s = b0_;
      for (std::size_t j = 0; j < w_.size(); ++j) s += w_[j] * x.at(r, j);
      p[r] = std::clamp(s, 0.0, 1.0);
    }
    return p;
  }
  void save(const std::string&) const override {}
  void load(const std::string&, const data::Schema&) override {}

 private:
  double b0_;
  std::vector<double> w_;
};

CfOptions nice_options(const std::string& method, int threads = 1) {
  CfOptions o;
  o.method = method;
  o.threads = threads;
  o.seed = 3;
  return o;
}

// A prepared generator plus what it points at.
struct Problem {
  data::Schema schema;
  data::Matrix train_x;
  std::vector<int> train_y;
  std::unique_ptr<clf::Classifier> model;
  std::unique_ptr<BlackBox> f;
  Context context() const { return Context{f.get(), &schema, &train_x, &train_y}; }
};

// ---------------------------------------------------------------- hand-computed case
//
// Features a, b, c (continuous); f: p1 = 0.1 + 0.25 a + 0.3 b + 0.2 c.
// Training rows (label = f's class except r3):
//   r0 (1, 1, 1)      p 0.85  label 1   HEOM from 0: 1/4 + 1/1 + 1/4 = 1.5
//   r1 (-1, 0, -1)    p 0     label 0
//   r2 (3, 1, 3)      p 1     label 1   HEOM 2.5
//   r3 (0.5, 1, 0.5)  p 0.625 label 0   HEOM 1.25 (misclassified: not justified)
// Min-max scales: a 4, b 1, c 4. Query x = (0, 0, 0), p 0.1, target 1.
// sparsity:  step 1 gains a .25, b .30, c .20 -> b (0,1,0) p .40
//            step 2 gains a .25, c .20        -> a (1,1,0) p .65  done
// proximity: step 1 gain/dist a .25/.25, b .3/1, c .2/.25 -> a (1,0,0) p .35
//            step 2 b .3/1, c .2/.25                      -> c (1,0,1) p .55  done
Problem hand_setup(std::vector<bool> immutable = {false, false, false}) {
  Problem s;
  for (const char* name : {"a", "b", "c"}) s.schema.features.push_back(test::feature(name));
  for (std::size_t j = 0; j < 3; ++j) s.schema.features[j].immutable = immutable[j];
  s.train_x = data::Matrix(4, 3);
  s.train_x.values = {1, 1, 1, -1, 0, -1, 3, 1, 3, 0.5, 1, 0.5};
  s.train_y = {1, 0, 1, 0};
  s.schema.learn_bounds(s.train_x, {0, 1, 2, 3});
  s.model = std::make_unique<LinearClip>(0.1, std::vector<double>{0.25, 0.3, 0.2});
  s.f = std::make_unique<BlackBox>(*s.model);
  return s;
}

std::vector<QueryResult> run(const Problem& s, const CfOptions& options, const data::Matrix& queries,
                             const std::vector<int>& targets) {
  auto generator = make_generator(options);
  generator->prepare(s.context());
  return explain_all(*generator, s.context(), queries, targets, options);
}

data::Matrix one_row(std::vector<double> v) {
  data::Matrix m(1, v.size());
  m.values = std::move(v);
  return m;
}

TEST(Nice, HandComputedPaths) {
  const Problem s = hand_setup();
  const data::Matrix x = one_row({0, 0, 0});
  const std::vector<std::pair<std::string, std::vector<double>>> expected = {
      {"nice-none", {1, 1, 1}}, {"nice-sparsity", {1, 1, 0}}, {"nice", {1, 1, 0}}, {"nice-proximity", {1, 0, 1}}};
  for (const auto& [method, cf] : expected) {
    const auto r = run(s, nice_options(method), x, {1});
    ASSERT_EQ(r[0].cfs.size(), 1u) << method << ": " << r[0].note;
    EXPECT_EQ(r[0].cfs[0].x, cf) << method;
    EXPECT_TRUE(r[0].cfs[0].valid) << method;
  }
}

// One predict_proba for x, then one batch per best-first step (NICEx predicts
// row by row inside each step too, but the batches are the same).
TEST(Nice, OneBatchedPredictionPerStep) {
  const Problem s = hand_setup();
  auto generator = make_generator(nice_options("nice-sparsity"));
  generator->prepare(s.context());
  EXPECT_EQ(s.f->n_calls(), 1u);  // the training rows, once
  Rng rng(1);
  const auto r = generator->explain({0, 0, 0}, 1, rng);
  ASSERT_EQ(r.cfs.size(), 1u);
  EXPECT_EQ(s.f->n_calls(), 1u + 1u + 2u);
  EXPECT_EQ(s.f->n_rows(), 4u + 1u + 3u + 2u);
}

// A mutable value of x outside the schema's range is replaced by the NUN's
// before the search: x = (0, 0, -2) with c in [-1, 3]; NUN r0 (HEOM 2.0);
// start (0, 0, 1) p .3; step 1 gains a .25, b .30 -> (0, 1, 1) p .6.
TEST(Nice, OutOfRangeQueryValuesAreTakenFromTheNun) {
  const Problem s = hand_setup();
  const auto r = run(s, nice_options("nice-sparsity"), one_row({0, 0, -2}), {1});
  ASSERT_EQ(r[0].cfs.size(), 1u) << r[0].note;
  EXPECT_EQ(r[0].cfs[0].x, (std::vector<double>{0, 1, 1}));
  EXPECT_EQ(count_violations(s.schema, {0, 0, -2}, r[0].cfs[0].x), 0);
}

TEST(Nice, JustifiedCandidatesOnly) {
  const Problem s = hand_setup();
  CfOptions o = nice_options("nice-none");
  o.nice.justified = false;  // r3 (misclassified, nearer) becomes the NUN
  auto r = run(s, o, one_row({0, 0, 0}), {1});
  ASSERT_EQ(r[0].cfs.size(), 1u);
  EXPECT_EQ(r[0].cfs[0].x, (std::vector<double>{0.5, 1, 0.5}));
  o.nice.normalization = "std";  // scales change, the nearest row does not
  r = run(s, o, one_row({0, 0, 0}), {1});
  ASSERT_EQ(r[0].cfs.size(), 1u);
  EXPECT_EQ(r[0].cfs[0].x, (std::vector<double>{0.5, 1, 0.5}));
}

TEST(Nice, TowardsClassZero) {
  const Problem s = hand_setup();
  // x = (3, 1, 2.5): p 1, target 0; the only class-0 candidate is r1.
  const auto r = run(s, nice_options("nice-sparsity"), one_row({3, 1, 2.5}), {0});
  ASSERT_EQ(r[0].cfs.size(), 1u) << r[0].note;
  EXPECT_TRUE(r[0].cfs[0].valid);
  // sparsity (gains in p0 = 1 - p1): step 1 a -> p1(-1,1,2.5) = .65 gains .35, b gains 0,
  // c -> .95 gains .05: take a; step 2 b -> .35 gains .30, c -> 0 gains .35: take c.
  EXPECT_EQ(r[0].cfs[0].x, (std::vector<double>{-1, 1, -1}));
  EXPECT_LE(r[0].cfs[0].p1, 0.5);
}

TEST(Nice, EmptyPoolGivesNoCfAndANote) {
  Problem s = hand_setup();
  s.model = std::make_unique<LinearClip>(0.2, std::vector<double>{0, 0, 0});  // never predicts 1
  s.f = std::make_unique<BlackBox>(*s.model);
  s.train_y = {0, 0, 0, 0};
  for (const char* method : {"nice-none", "nice-sparsity", "nice-proximity"}) {
    const auto r = run(s, nice_options(method), one_row({0, 0, 0}), {1});
    EXPECT_TRUE(r[0].cfs.empty()) << method;
    EXPECT_NE(r[0].note.find("pool is empty"), std::string::npos) << method << ": " << r[0].note;
  }
}

TEST(Nice, UnreachableBecauseOfImmutablesGivesNoCf) {
  // p1 = 0.2 a + 0.9 b with b immutable: from b = 0 no mutable change reaches class 1.
  Problem s = hand_setup({false, true, false});
  s.model = std::make_unique<LinearClip>(0.0, std::vector<double>{0.2, 0.9, 0});
  s.f = std::make_unique<BlackBox>(*s.model);
  s.train_y = {1, 0, 1, 1};
  for (const char* method : {"nice-none", "nice-sparsity", "nice-proximity", "nice-plausibility"}) {
    const auto r = run(s, nice_options(method), one_row({0, 0, 0}), {1});
    EXPECT_TRUE(r[0].cfs.empty()) << method;
    EXPECT_NE(r[0].note.find("immutable"), std::string::npos) << method << ": " << r[0].note;
  }
  // From b = 0.5 copying a (NUN r3: a = 0.5) gives p1 = 0.55; the CF keeps b.
  const auto r = run(s, nice_options("nice-sparsity"), one_row({0, 0.5, 0}), {1});
  ASSERT_EQ(r[0].cfs.size(), 1u) << r[0].note;
  EXPECT_EQ(r[0].cfs[0].x, (std::vector<double>{0.5, 0.5, 0}));
}

TEST(Nice, MissingLabelsForJustifiedCfsAreReported) {
  const Problem s = hand_setup();
  auto generator = make_generator(nice_options("nice-none"));
  Context c = s.context();
  c.train_y = nullptr;
  EXPECT_THROW_WITH(generator->prepare(c), Error, "training label");
}

// ---------------------------------------------------------------- synthetic cohort

// NICEx's HEOM, written out plainly for the brute-force checks.
double heom(const data::Schema& schema, const data::Matrix& train, const double* a, const double* b) {
  double d = 0;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    if (schema.features[j].is_categorical()) {
      d += a[j] != b[j];
      continue;
    }
    double lo = train.at(0, j), hi = lo;
    for (std::size_t r = 0; r < train.n_rows; ++r) {
      lo = std::min(lo, train.at(r, j));
      hi = std::max(hi, train.at(r, j));
    }
    d += std::abs(a[j] - b[j]) / std::max(hi - lo, 1e-11);
  }
  return d;
}

struct Cohort {
  Problem setup;
  data::Matrix queries;
  std::vector<int> targets;
};

// 20 participants x 12 windows; queries = the first 40 rows, target = the other class.
Cohort make_cohort(const std::string& model) {
  clf::ClfOptions co;
  co.model = model;
  co.seed = 5;
  co.threads = 1;
  co.xgb_rounds = 40;
  co.nn_max_epochs = 40;
  test::FlipCohort fc = test::make_flip_cohort(20, 11, co, 40, 5);
  Cohort c;
  Problem& s = c.setup;
  s.schema = fc.data.schema;
  s.train_x = fc.data.x;
  s.train_y = fc.data.y;
  s.model = std::move(fc.model);
  s.f = std::move(fc.f);
  c.queries = std::move(fc.queries);
  c.targets = std::move(fc.targets);
  return c;
}

// Trained once for the whole binary and deliberately never freed: destroying an
// XGBoost booster during exit, after libxgboost's own statics, crashes.
const Cohort& xgb_cohort() {
  static const Cohort* c = new Cohort(make_cohort("xgb"));
  return *c;
}

std::size_t n_changed(const std::vector<double>& x, const std::vector<double>& cf) {
  std::size_t n = 0;
  for (std::size_t j = 0; j < x.size(); ++j) n += x[j] != cf[j];
  return n;
}

// Every CF valid, in range, immutables kept; at least `min_share` of the queries
// get one (the rest are blocked by immutables, which a weak model leans on).
void expect_valid_and_constrained(const Cohort& c, const std::vector<QueryResult>& results, const std::string& method,
                                  double min_share = 0.5) {
  std::size_t n_found = 0;
  for (const auto& r : results) {
    const std::vector<double> x(c.queries.row(r.query), c.queries.row(r.query) + c.queries.n_cols);
    if (r.cfs.empty()) {
      EXPECT_FALSE(r.note.empty()) << method;
      continue;
    }
    ++n_found;
    ASSERT_EQ(r.cfs.size(), 1u);
    const auto& cf = r.cfs[0];
    EXPECT_TRUE(cf.valid) << method << " query " << r.query;
    EXPECT_EQ(count_violations(c.setup.schema, x, cf.x), 0) << method << " query " << r.query;
    for (std::size_t j = 0; j < x.size(); ++j) {
      if (c.setup.schema.features[j].immutable) {
        EXPECT_EQ(cf.x[j], x[j]) << method << " " << j;
      }
    }
  }
  EXPECT_GE(static_cast<double>(n_found), min_share * static_cast<double>(results.size()))
      << method << ": too few CFs";
}

TEST(NiceCohort, NoneReturnsTheHeomNearestJustifiedRow) {
  const Cohort& c = xgb_cohort();
  const Problem& s = c.setup;
  const auto results = run(s, nice_options("nice-none"), c.queries, c.targets);
  const std::vector<double> p = s.f->predict_proba(s.train_x);
  for (const auto& r : results) {
    const double* x = c.queries.row(r.query);
    std::size_t best = s.train_x.n_rows;
    double best_d = 0;
    for (std::size_t i = 0; i < s.train_x.n_rows; ++i) {
      const int cls = p[i] > 0.5 ? 1 : 0;
      if (cls != r.target || s.train_y[i] != cls) continue;
      const double d = heom(s.schema, s.train_x, x, s.train_x.row(i));
      if (best == s.train_x.n_rows || d < best_d - 1e-12) {
        best = i;
        best_d = d;
      }
    }
    ASSERT_LT(best, s.train_x.n_rows);
    // The CF is the NUN's mutable values with x's immutables, if that is valid.
    std::vector<double> expected(s.train_x.row(best), s.train_x.row(best) + s.train_x.n_cols);
    for (std::size_t j = 0; j < expected.size(); ++j) {
      if (s.schema.features[j].immutable) expected[j] = x[j];
    }
    if (s.f->predict(expected) == r.target) {
      ASSERT_EQ(r.cfs.size(), 1u) << r.note;
      EXPECT_EQ(r.cfs[0].x, expected);
    } else {
      EXPECT_TRUE(r.cfs.empty());
      EXPECT_NE(r.note.find("immutable"), std::string::npos) << r.note;
    }
  }
}

TEST(NiceCohort, NoneReturnsATrainingRowWithoutImmutables) {
  Cohort c = make_cohort("xgb");
  for (auto& f : c.setup.schema.features) f.immutable = false;
  const auto results = run(c.setup, nice_options("nice-none"), c.queries, c.targets);
  for (const auto& r : results) {
    ASSERT_EQ(r.cfs.size(), 1u) << r.note;
    EXPECT_TRUE(r.cfs[0].valid);
    bool is_row = false;
    for (std::size_t i = 0; i < c.setup.train_x.n_rows && !is_row; ++i) {
      is_row = std::equal(r.cfs[0].x.begin(), r.cfs[0].x.end(), c.setup.train_x.row(i));
    }
    EXPECT_TRUE(is_row) << "query " << r.query;
  }
}

TEST(NiceCohort, EveryRewardGivesValidConstrainedCfs) {
  const Cohort& c = xgb_cohort();
  std::vector<QueryResult> none;
  for (const char* method : {"nice-none", "nice-sparsity", "nice-proximity", "nice-plausibility"}) {
    const auto results = run(c.setup, nice_options(method), c.queries, c.targets);
    expect_valid_and_constrained(c, results, method);
    if (std::string(method) == "nice-none") none = results;
    // Best-first ends at the NUN (mutables copied) at the latest, so it finds a CF
    // whenever nice-none does (it may also stop at a valid point on the way when
    // the NUN itself is blocked by immutables), with a subset of its changes.
    for (std::size_t i = 0; i < results.size(); ++i) {
      ASSERT_GE(results[i].cfs.size(), none[i].cfs.size()) << method << " query " << i;
      if (results[i].cfs.empty() || none[i].cfs.empty()) continue;
      const std::vector<double> x(c.queries.row(i), c.queries.row(i) + c.queries.n_cols);
      for (std::size_t j = 0; j < x.size(); ++j) {
        const double v = results[i].cfs[0].x[j];
        EXPECT_TRUE(v == x[j] || v == none[i].cfs[0].x[j]) << method << " query " << i << " feature " << j;
      }
    }
  }
  CfOptions std_scaling = nice_options("nice-proximity");
  std_scaling.nice.normalization = "std";
  expect_valid_and_constrained(c, run(c.setup, std_scaling, c.queries, c.targets), "nice-proximity (std)");
}

TEST(NiceCohort, SparsityChangesNoMoreFeaturesThanTheNun) {
  const Cohort& c = xgb_cohort();
  const auto none = run(c.setup, nice_options("nice-none"), c.queries, c.targets);
  const auto sparse = run(c.setup, nice_options("nice-sparsity"), c.queries, c.targets);
  double sum_none = 0, sum_sparse = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < none.size(); ++i) {
    if (none[i].cfs.empty() || sparse[i].cfs.empty()) continue;
    const std::vector<double> x(c.queries.row(i), c.queries.row(i) + c.queries.n_cols);
    const auto a = n_changed(x, none[i].cfs[0].x), b = n_changed(x, sparse[i].cfs[0].x);
    EXPECT_LE(b, a) << "query " << i;
    sum_none += a;
    sum_sparse += b;
    ++n;
  }
  ASSERT_GT(n, 0u);
  EXPECT_LT(sum_sparse / n, sum_none / n);
}

TEST(NiceCohort, DeterministicAcrossRunsAndThreads) {
  const Cohort& c = xgb_cohort();
  for (const char* method : {"nice-none", "nice-sparsity", "nice-proximity", "nice-plausibility"}) {
    const auto a = run(c.setup, nice_options(method, 1), c.queries, c.targets);
    const auto b = run(c.setup, nice_options(method, 1), c.queries, c.targets);
    const auto d = run(c.setup, nice_options(method, 4), c.queries, c.targets);
    for (std::size_t i = 0; i < a.size(); ++i) {
      for (const auto* other : {&b, &d}) {
        ASSERT_EQ(a[i].cfs.size(), (*other)[i].cfs.size()) << method << " query " << i;
        EXPECT_EQ(a[i].note, (*other)[i].note);
        if (!a[i].cfs.empty()) {
          EXPECT_EQ(a[i].cfs[0].x, (*other)[i].cfs[0].x) << method << " query " << i;
        }
      }
    }
  }
}

TEST(NiceCohort, WorksWithTheNnBlackBox) {
  const Cohort c = make_cohort("nn");
  for (const char* method : {"nice-none", "nice-sparsity", "nice-proximity"}) {
    expect_valid_and_constrained(c, run(c.setup, nice_options(method, 2), c.queries, c.targets), method, 0.25);
  }
}

TEST(NiceAutoencoder, TrainingRowsReconstructBetterThanNoise) {
  const Cohort& c = xgb_cohort();
  const Problem& s = c.setup;
  AutoencoderOptions o;
  o.seed = 9;
  Autoencoder ae;
  ae.fit(s.schema, s.train_x, o);
  // Noise rows: each value uniform over the feature's permitted range / codes.
  Rng rng(4);
  data::Matrix noise(200, s.schema.size());
  for (std::size_t r = 0; r < noise.n_rows; ++r) {
    for (std::size_t j = 0; j < s.schema.size(); ++j) {
      const auto& f = s.schema.features[j];
      noise.at(r, j) = f.is_categorical() ? f.allowed[rng.below(f.allowed.size())] : rng.uniform(f.lower, f.upper);
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double m = 0;
    for (double e : v) m += e;
    return m / static_cast<double>(v.size());
  };
  const auto train_err = ae.reconstruction_error(s.train_x);
  ASSERT_EQ(train_err.size(), s.train_x.n_rows);
  EXPECT_LT(mean(train_err), 0.5 * mean(ae.reconstruction_error(noise)));
  // Same seed, same network.
  Autoencoder again;
  again.fit(s.schema, s.train_x, o);
  EXPECT_EQ(again.reconstruction_error(s.train_x), train_err);
}

}  // namespace
}  // namespace sensecf::cf
