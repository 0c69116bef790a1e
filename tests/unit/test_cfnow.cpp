// Unit tests of CFNOW (cf/cfnow.cpp, cfnow_search.cpp, cfnow_finetune.cpp).
//
// A transparent logistic black box pins what the greedy finder must do (one
// step of the mutable feature with the largest effect, never the immutable
// one with a larger weight), what the fine-tune must reach (close to the
// decision boundary along the cheapest feature), that categorical features
// switch to allowed codes only and that numeric zeros never move (as in
// cfnow). On a small synthetic cohort with XGBoost, for greedy, random and
// random-sequential: every CF is valid, in range and keeps the immutables;
// CFs come sorted by L1; the fine-tune never makes the i-th CF worse than the
// finder's; results repeat for a seed and do not depend on the thread count.
// Also: a query outside the permitted ranges is searched from its projection;
// the time limit and it_max stop an unreachable search with a note; a query
// already of the target class gives no CF; bad strategy names are refused.
#include <gtest/gtest.h>

#include <cstdint>
#include <chrono>
#include <cmath>

#include "sensecf/cf/cfnow.h"
#include "sensecf/cf/generator.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "cf_cohort.h"
#include "test_util.h"

namespace sensecf::cf {
namespace {

const std::vector<std::string> kStrategies = {"greedy", "random", "random-sequential"};

// p1 = sigmoid(b0 + w . x): a transparent black box.
class Logistic final : public clf::Classifier {
 public:
  Logistic(double b0, std::vector<double> w) : b0_(b0), w_(std::move(w)) {}
  std::string kind() const override { return "logistic-test"; }
  void fit(const data::Schema&, const data::Matrix&, const std::vector<int>&) override {}
  std::vector<double> predict_proba(const data::Matrix& x) const override {
    std::vector<double> p(x.n_rows);
    for (std::size_t r = 0; r < x.n_rows; ++r) {
      double s = b0_;
      for (std::size_t j = 0; j < w_.size(); ++j) s += w_[j] * x.at(r, j);
      p[r] = 1.0 / (1.0 + std::exp(-s));
    }
    return p;
  }
  void save(const std::string&) const override {}
  void load(const std::string&, const data::Schema&) override {}

 private:
  double b0_;
  std::vector<double> w_;
};

// L1 as CFNOW ranks CFs: raw numeric differences; a changed categorical
// counts 1 (binary) or 2 (k > 2 levels, its one-hot group).
double cfnow_l1(const data::Schema& schema, const std::vector<double>& x, const std::vector<double>& c) {
  double s = 0.0;
  for (std::size_t j = 0; j < x.size(); ++j) {
    const auto& f = schema.features[j];
    if (f.is_categorical()) {
      s += c[j] != x[j] ? (f.categories.size() > 2 ? 2.0 : 1.0) : 0.0;
    } else {
      s += std::abs(c[j] - x[j]);
    }
  }
  return s;
}

CfOptions options(const std::string& strategy, int threads = 1) {
  CfOptions o;
  o.method = "cfnow-" + strategy;
  o.threads = threads;
  o.seed = 17;
  o.time_limit = 30.0;
  return o;
}

// ---------------------------------------------------------------- logistic case
//
// Features: a, b, c continuous in [0, 100]; e continuous, immutable; g
// categorical {p, q, r} with only p, q allowed.
// logit = -18.3 + 0.1 a + 0.5 b + 0.2 c + 1.0 e + wg g.
// Query (10, 10, 10, 10, 0): logit -0.3, class 0, target 1.
// Greedy's first moves change the logit by a +-0.1, b +-0.5, c +-0.2, g +wg
// (e would give +-1 but is immutable): b up to 11 gives logit +0.2, a CF, so
// the finder stops there. The cheapest CF in L1 moves b alone to 10.6.
struct Linear {
  data::Schema schema;
  std::unique_ptr<Logistic> model;
  std::unique_ptr<BlackBox> f;
  Context context() const { return Context{f.get(), &schema, nullptr, nullptr}; }
};

Linear make_linear(double b0 = -18.3, double wg = 0.05, std::vector<double> w = {0.1, 0.5, 0.2, 1.0}) {
  Linear l;
  for (const char* name : {"a", "b", "c", "e"}) {
    data::Feature f = test::feature(name);
    f.lower = 0.0;
    f.upper = 100.0;
    l.schema.features.push_back(f);
  }
  l.schema.features[3].immutable = true;
  data::Feature g = test::feature("g");
  g.kind = data::FeatureKind::kCategorical;
  g.categories = {"p", "q", "r"};
  g.allowed = {0, 1};
  l.schema.features.push_back(g);
  w.push_back(wg);
  l.model = std::make_unique<Logistic>(b0, w);
  l.f = std::make_unique<BlackBox>(*l.model);
  return l;
}

QueryResult explain_one(const Generator& generator, const std::vector<double>& x, int target,
                        std::uint64_t seed = 1) {
  Rng rng(seed);
  return generator.explain(x, target, rng);
}

TEST(CfnowLinear, GreedyMovesTheMutableFeatureWithTheLargestEffect) {
  const Linear l = make_linear();
  CfOptions o = options("greedy");
  o.cfnow.ft_it_max = -1;  // finder output only
  auto generator = make_cfnow(o, "greedy");
  generator->prepare(l.context());
  const std::vector<double> x = {10, 10, 10, 10, 0};
  const QueryResult r = explain_one(*generator, x, 1);
  ASSERT_EQ(r.cfs.size(), 1u) << r.note;
  std::vector<double> expected = x;
  expected[1] = 11.0;  // b + 10% of its value
  EXPECT_EQ(r.cfs[0].x, expected);
  EXPECT_TRUE(r.cfs[0].valid);
  EXPECT_NE(r.note.find("fine-tune off"), std::string::npos) << r.note;
}

TEST(CfnowLinear, FineTuneWalksTowardsTheBoundary) {
  const Linear l = make_linear();
  const std::vector<double> x = {10, 10, 10, 10, 0};
  for (const auto& strategy : kStrategies) {
    auto off_options = options(strategy);
    off_options.cfnow.ft_it_max = -1;
    auto off = make_cfnow(off_options, strategy);
    auto on = make_cfnow(options(strategy), strategy);
    off->prepare(l.context());
    on->prepare(l.context());
    const QueryResult r_off = explain_one(*off, x, 1);
    const QueryResult r_on = explain_one(*on, x, 1);
    ASSERT_EQ(r_off.cfs.size(), 1u) << strategy << ": " << r_off.note;
    ASSERT_EQ(r_on.cfs.size(), 1u) << strategy << ": " << r_on.note;
    const double l1_off = cfnow_l1(l.schema, x, r_off.cfs[0].x);
    const double l1_on = cfnow_l1(l.schema, x, r_on.cfs[0].x);
    EXPECT_TRUE(r_on.cfs[0].valid) << strategy;
    EXPECT_EQ(r_on.cfs[0].x[3], x[3]) << strategy << ": the immutable moved";
    EXPECT_LE(l1_on, l1_off) << strategy;
    EXPECT_GE(l1_on, 0.6 - 1e-9) << strategy << ": below the cheapest possible CF";
    EXPECT_LT(l1_on, 0.7) << strategy << ": the fine-tune should get close to b = 10.6";
  }
}

TEST(CfnowLinear, CategoricalSwitchesToAnAllowedCodeAndZerosNeverMove) {
  // a, b, c are 0 (relative steps cannot move them); only g can reach a CF:
  // logit = -11 + e + 2 g, e = 10: g = 1 gives +1 (g = 2, not allowed, +3).
  const Linear l = make_linear(-11.0, 2.0);
  const std::vector<double> x = {0, 0, 0, 10, 0};
  for (const auto& strategy : kStrategies) {
    auto generator = make_cfnow(options(strategy), strategy);
    generator->prepare(l.context());
    const QueryResult r = explain_one(*generator, x, 1);
    ASSERT_EQ(r.cfs.size(), 1u) << strategy << ": " << r.note;
    EXPECT_EQ(r.cfs[0].x, (std::vector<double>{0, 0, 0, 10, 1})) << strategy;
  }
}

TEST(CfnowLinear, QueryOutsideThePermittedRangesStartsFromItsProjection) {
  // a = -5 < lower 0: logit -1.8 (class 0); the search starts at a = 0
  // (logit -1.3), where a cannot move; b reaches a CF.
  const Linear l = make_linear();
  const std::vector<double> x = {-5, 10, 10, 10, 0};
  for (const auto& strategy : kStrategies) {
    auto generator = make_cfnow(options(strategy), strategy);
    generator->prepare(l.context());
    const QueryResult r = explain_one(*generator, x, 1);
    ASSERT_FALSE(r.cfs.empty()) << strategy << ": " << r.note;
    EXPECT_NE(r.note.find("outside the permitted ranges"), std::string::npos) << strategy << ": " << r.note;
    for (const auto& cf : r.cfs) {
      EXPECT_TRUE(cf.valid) << strategy;
      EXPECT_EQ(count_violations(l.schema, x, cf.x), 0) << strategy;
      EXPECT_EQ(cf.x[0], 0.0) << strategy;
    }
  }
}

TEST(CfnowLinear, QueryAlreadyOfTheTargetClassGivesNoCf) {
  const Linear l = make_linear();
  auto generator = make_cfnow(options("random"), "random");
  generator->prepare(l.context());
  const QueryResult r = explain_one(*generator, {10, 10, 10, 10, 0}, 0);
  EXPECT_TRUE(r.cfs.empty());
  EXPECT_EQ(r.note, "query already predicted as target");
}

TEST(CfnowLinear, TimeLimitStopsAnUnreachableSearch) {
  // Only the immutable e matters: no CF exists, the finders would run it_max.
  const Linear l = make_linear(-10.5, 0.0, {0.0, 0.0, 0.0, 1.0});
  for (const auto& strategy : kStrategies) {
    CfOptions o = options(strategy);
    o.cfnow.it_max = 1000000000;
    o.time_limit = 0.05;
    auto generator = make_cfnow(o, strategy);
    generator->prepare(l.context());
    const auto start = std::chrono::steady_clock::now();
    const QueryResult r = explain_one(*generator, {10, 10, 10, 10, 0}, 1);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_TRUE(r.cfs.empty()) << strategy;
    EXPECT_LT(seconds, 1.0) << strategy;
    EXPECT_NE(r.note.find("time limit"), std::string::npos) << strategy << ": " << r.note;
    EXPECT_NE(r.note.find("no counterfactual found"), std::string::npos) << strategy << ": " << r.note;
  }
}

TEST(CfnowLinear, ItMaxEndsAnUnreachableSearchWithANote) {
  const Linear l = make_linear(-10.5, 0.0, {0.0, 0.0, 0.0, 1.0});
  for (const auto& strategy : kStrategies) {
    CfOptions o = options(strategy);
    o.cfnow.it_max = 50;
    auto generator = make_cfnow(o, strategy);
    generator->prepare(l.context());
    const QueryResult r = explain_one(*generator, {10, 10, 10, 10, 0}, 1);
    EXPECT_TRUE(r.cfs.empty()) << strategy;
    EXPECT_NE(r.note.find("no counterfactual found in 50 iterations"), std::string::npos)
        << strategy << ": " << r.note;
  }
}

TEST(CfnowLinear, UnknownStrategyAndBadOptionsAreRefused) {
  EXPECT_THROW_WITH(make_cfnow(options("greedy"), "tabu"), UsageError, "unknown CFNOW strategy");
  CfOptions o = options("random");
  o.cfnow.threshold_changes = 0;
  EXPECT_THROW_WITH(make_cfnow(o, "random"), UsageError, "threshold_changes");
  EXPECT_EQ(make_generator(options("random-sequential"))->name(), "cfnow-random-sequential");
}

// ---------------------------------------------------------------- synthetic cohort

struct Cohort {
  data::Schema schema;
  std::unique_ptr<clf::Classifier> model;
  std::unique_ptr<BlackBox> f;
  data::Matrix queries;
  std::vector<int> targets;
  Context context() const { return Context{f.get(), &schema, nullptr, nullptr}; }
};

// 60 participants; XGBoost; 8 queries spread over the cohort, target = the other class.
// Never destroyed: freeing an XGBoost booster from an exit handler, after
// XGBoost's own statics are gone, crashes in ~HostDeviceVector.
const Cohort& cohort() {
  static const Cohort& c = *[] {
    clf::ClfOptions co;
    co.model = "xgb";
    co.seed = 3;
    co.threads = 1;
    co.xgb_rounds = 40;
    test::FlipCohort fc = test::make_flip_cohort(60, 5, co, 8, 89);
    return new Cohort{fc.data.schema, std::move(fc.model), std::move(fc.f), std::move(fc.queries),
                      std::move(fc.targets)};
  }();
  return c;
}

// Bounded iterations so that no run gets near the time limit (results must
// not depend on the clock).
CfOptions cohort_options(const std::string& strategy, int threads = 1) {
  CfOptions o = options(strategy, threads);
  o.n_cfs = 3;
  o.cfnow.it_max = 100;
  o.cfnow.ft_it_max = 50;
  return o;
}

std::vector<QueryResult> run(const Cohort& c, const CfOptions& o) {
  auto generator = make_generator(o);
  generator->prepare(c.context());
  return explain_all(*generator, c.context(), c.queries, c.targets, o);
}

TEST(CfnowCohort, CfsAreValidInRangeKeepImmutablesAndComeSortedByL1) {
  const Cohort& c = cohort();
  for (const auto& strategy : kStrategies) {
    const auto results = run(c, cohort_options(strategy));
    std::size_t n_found = 0;
    for (const auto& r : results) {
      const std::vector<double> x(c.queries.row(r.query), c.queries.row(r.query) + c.queries.n_cols);
      if (r.cfs.empty()) {
        EXPECT_FALSE(r.note.empty()) << strategy;
        continue;
      }
      ++n_found;
      EXPECT_LE(r.cfs.size(), 3u);
      for (std::size_t k = 0; k < r.cfs.size(); ++k) {
        const auto& cf = r.cfs[k];
        EXPECT_TRUE(cf.valid) << strategy << " query " << r.query;
        EXPECT_EQ(count_violations(c.schema, x, cf.x), 0) << strategy << " query " << r.query;
        for (std::size_t j = 0; j < x.size(); ++j) {
          if (c.schema.features[j].immutable) {
            EXPECT_EQ(cf.x[j], x[j]) << strategy << " feature " << j;
          }
        }
        if (k > 0) {
          EXPECT_LE(cfnow_l1(c.schema, x, r.cfs[k - 1].x), cfnow_l1(c.schema, x, cf.x)) << strategy;
          EXPECT_NE(r.cfs[k - 1].x, cf.x) << strategy;
        }
      }
    }
    EXPECT_GE(n_found, results.size() * 3 / 4) << strategy << ": too few CFs";
  }
}

TEST(CfnowCohort, FineTuneNeverIncreasesL1) {
  const Cohort& c = cohort();
  for (const auto& strategy : kStrategies) {
    CfOptions off = cohort_options(strategy);
    off.cfnow.ft_it_max = -1;
    const auto r_off = run(c, off);
    const auto r_on = run(c, cohort_options(strategy));
    double sum_off = 0.0, sum_on = 0.0;
    for (std::size_t q = 0; q < r_off.size(); ++q) {
      const std::vector<double> x(c.queries.row(q), c.queries.row(q) + c.queries.n_cols);
      ASSERT_GE(r_on[q].cfs.size(), r_off[q].cfs.size()) << strategy << " query " << q;
      for (std::size_t k = 0; k < r_off[q].cfs.size(); ++k) {
        const double l1_off = cfnow_l1(c.schema, x, r_off[q].cfs[k].x);
        const double l1_on = cfnow_l1(c.schema, x, r_on[q].cfs[k].x);
        EXPECT_LE(l1_on, l1_off) << strategy << " query " << q << " cf " << k;
        if (k == 0) {
          sum_off += l1_off;
          sum_on += l1_on;
        }
      }
    }
    EXPECT_LT(sum_on, sum_off) << strategy << ": the fine-tune improved nothing";
  }
}

TEST(CfnowCohort, SameSeedSameCfsAndThreadCountDoesNotMatter) {
  const Cohort& c = cohort();
  for (const auto& strategy : kStrategies) {
    const auto a = run(c, cohort_options(strategy, 1));
    const auto b = run(c, cohort_options(strategy, 1));
    const auto d = run(c, cohort_options(strategy, 4));
    ASSERT_EQ(a.size(), d.size());
    for (std::size_t q = 0; q < a.size(); ++q) {
      ASSERT_EQ(a[q].cfs.size(), b[q].cfs.size()) << strategy << " query " << q;
      ASSERT_EQ(a[q].cfs.size(), d[q].cfs.size()) << strategy << " query " << q;
      for (std::size_t k = 0; k < a[q].cfs.size(); ++k) {
        EXPECT_EQ(a[q].cfs[k].x, b[q].cfs[k].x) << strategy << " query " << q;
        EXPECT_EQ(a[q].cfs[k].x, d[q].cfs[k].x) << strategy << " query " << q;
      }
      EXPECT_EQ(a[q].note, d[q].note) << strategy;
    }
  }
}

TEST(CfnowCohort, TinyTimeLimitReturnsQuicklyWithANote) {
  const Cohort& c = cohort();
  CfOptions o = options("random");
  o.cfnow.it_max = 1000000000;
  o.time_limit = 1e-5;
  o.n_cfs = 50;  // more than the first batches can give
  const auto start = std::chrono::steady_clock::now();
  const auto results = run(c, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 2.0);
  for (const auto& r : results) {
    EXPECT_NE(r.note.find("time limit"), std::string::npos) << "query " << r.query << ": " << r.note;
    for (const auto& cf : r.cfs) EXPECT_TRUE(cf.valid);
  }
}

}  // namespace
}  // namespace sensecf::cf
