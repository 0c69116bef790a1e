// The CF module's batch interface: Generator::explain_batch and explain_all
// (thread-count independence, the documented per-query seeds, a generator that
// overrides the batch), the shared explain_rows flow, and the CF CSV file
// (exact bytes, round trip, errors naming file:line).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cf_cohort.h"
#include "sensecf/cf/cf_csv.h"
#include "sensecf/cf/explain.h"
#include "sensecf/cf/generator.h"
#include "sensecf/cf/metrics.h"
#include "sensecf/core/error.h"
#include "test_util.h"
#include "threshold_model.h"

namespace sensecf::cf {
namespace {

// A synthetic cohort (continuous and categorical features), an XGBoost model
// trained on all of it, and 8 queries to flip.
struct Cohort {
  test::FlipCohort c;
  Context context() const { return Context{c.f.get(), &c.data.schema, &c.data.x, &c.data.y}; }
};

const Cohort& cohort() {
  static const Cohort* c = [] {
    clf::ClfOptions co;
    co.model = "xgb";
    co.seed = 3;
    co.threads = 1;
    co.xgb_rounds = 40;
    return new Cohort{test::make_flip_cohort(60, 5, co, 8, 89)};
  }();
  return *c;
}

// Bounded iterations: no query may get near the time limit (results must not
// depend on the clock).
CfOptions options(const std::string& method, int threads) {
  CfOptions o;
  o.method = method;
  o.threads = threads;
  o.seed = 11;
  o.n_cfs = 2;
  o.dice.sample_size = 200;
  o.dice.max_iterations = 30;
  o.cfnow.it_max = 100;
  o.cfnow.ft_it_max = 50;
  return o;
}

// Random methods (dice-random, cfnow-random) make the seed checks bite; NICE
// and the others cover the remaining families.
const std::vector<std::string> kMethods = {"nice-sparsity", "dice-random",  "dice-genetic",
                                           "dice-kdtree",   "cfnow-greedy", "cfnow-random"};

// Everything but the timing.
void expect_same(const std::vector<QueryResult>& a, const std::vector<QueryResult>& b,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].query, b[i].query) << what << " result " << i;
    EXPECT_EQ(a[i].target, b[i].target) << what << " result " << i;
    EXPECT_EQ(a[i].note, b[i].note) << what << " result " << i;
    ASSERT_EQ(a[i].cfs.size(), b[i].cfs.size()) << what << " result " << i;
    for (std::size_t k = 0; k < a[i].cfs.size(); ++k) {
      EXPECT_EQ(a[i].cfs[k].x, b[i].cfs[k].x) << what << " result " << i << " cf " << k;
      EXPECT_EQ(a[i].cfs[k].p1, b[i].cfs[k].p1) << what << " result " << i << " cf " << k;
      EXPECT_EQ(a[i].cfs[k].valid, b[i].cfs[k].valid) << what << " result " << i << " cf " << k;
    }
  }
}

std::size_t n_cfs(const std::vector<QueryResult>& results) {
  std::size_t n = 0;
  for (const auto& r : results) n += r.cfs.size();
  return n;
}

TEST(CfBatch, ResultsDoNotDependOnThreadsAndFollowThePerQuerySeeds) {
  const Cohort& c = cohort();
  const data::Matrix& q = c.c.queries;
  for (const auto& method : kMethods) {
    auto generator = make_generator(options(method, 1));
    generator->prepare(c.context());
    const auto one = generator->explain_batch(q, c.c.targets, BatchSettings{11, 1});
    const auto two = generator->explain_batch(q, c.c.targets, BatchSettings{11, 2});
    expect_same(one, two, method + " explain_batch, 1 vs 2 threads");
    EXPECT_GT(n_cfs(one), 0u) << method;  // the comparisons compare something
    // The documented seeds: query i alone with Rng(query_seed(seed, i)).
    std::vector<QueryResult> alone;
    for (std::size_t i = 0; i < q.n_rows; ++i) {
      Rng rng(query_seed(11, i));
      QueryResult r =
          generator->explain(std::vector<double>(q.row(i), q.row(i) + q.n_cols), c.c.targets[i], rng);
      r.query = i;
      r.target = c.c.targets[i];
      alone.push_back(std::move(r));
    }
    expect_same(one, alone, method + " explain_batch vs explain() per query");
    for (const auto& r : one) EXPECT_GE(r.seconds, 0.0) << method;
    // explain_all: the same CFs, p1/valid filled, independent of the threads.
    const auto all_one = explain_all(*generator, c.context(), q, c.c.targets, options(method, 1));
    const auto all_two = explain_all(*generator, c.context(), q, c.c.targets, options(method, 2));
    expect_same(all_one, all_two, method + " explain_all, 1 vs 2 threads");
    ASSERT_EQ(all_one.size(), one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      ASSERT_EQ(all_one[i].cfs.size(), one[i].cfs.size()) << method;
      for (std::size_t k = 0; k < one[i].cfs.size(); ++k) {
        EXPECT_EQ(all_one[i].cfs[k].x, one[i].cfs[k].x) << method;
        const double p1 = c.c.f->predict_proba(all_one[i].cfs[k].x);
        EXPECT_EQ(all_one[i].cfs[k].p1, p1) << method;
        EXPECT_EQ(all_one[i].cfs[k].valid, (p1 > 0.5 ? 1 : 0) == c.c.targets[i]) << method;
      }
      if (all_one[i].cfs.empty()) {
        EXPECT_FALSE(all_one[i].note.empty()) << method;
      }
    }
  }
}

TEST(CfBatch, TheSeedReachesTheRandomMethods) {
  // Without this, the seed checks above could pass with a seed that is ignored.
  const Cohort& c = cohort();
  auto generator = make_generator(options("dice-random", 1));
  generator->prepare(c.context());
  const auto a = generator->explain_batch(c.c.queries, c.c.targets, BatchSettings{11, 1});
  const auto b = generator->explain_batch(c.c.queries, c.c.targets, BatchSettings{12, 1});
  bool any_difference = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].cfs.size() != b[i].cfs.size()) any_difference = true;
    for (std::size_t k = 0; k < std::min(a[i].cfs.size(), b[i].cfs.size()); ++k)
      any_difference = any_difference || a[i].cfs[k].x != b[i].cfs[k].x;
  }
  EXPECT_TRUE(any_difference);
  EXPECT_NE(query_seed(11, 0), query_seed(11, 1));
  EXPECT_NE(query_seed(11, 0), query_seed(12, 0));
}

using test::Threshold;  // f(z) = 1 iff z[0] > 5

// A generator that sees the whole batch at once (as the LLM generator will):
// one CF per query, z[0] = 10 * query index; it counts its batches.
class WholeBatch final : public Generator {
 public:
  std::string name() const override { return "whole-batch"; }
  QueryResult explain(const std::vector<double>&, int, Rng&) const override {
    throw Error("whole-batch: explain() must not be called");
  }
  std::vector<QueryResult> explain_batch(const data::Matrix& queries, const std::vector<int>& targets,
                                         const BatchSettings&) const override {
    ++n_batches;
    std::vector<QueryResult> out(queries.n_rows);
    for (std::size_t i = 0; i < queries.n_rows; ++i) {
      out[i].query = shift_queries ? i + 1 : i;
      out[i].target = targets[i];
      if (i % 2 == 0) out[i].cfs.push_back(Counterfactual{{10.0 * static_cast<double>(i), 0.0}, 0.0, false});
    }
    return out;
  }
  mutable int n_batches = 0;
  bool shift_queries = false;  // a broken override: results for the wrong queries
};

TEST(CfBatch, ExplainAllRunsAnOverriddenBatchAndFillsValidity) {
  Threshold model;
  BlackBox f(model);
  data::Schema schema;
  schema.features = {test::feature("a"), test::feature("b")};
  data::Matrix queries(4, 2, 1.0);
  const std::vector<int> targets = {1, 1, 0, 1};
  Context context{&f, &schema, &queries, nullptr};
  WholeBatch generator;
  generator.prepare(context);
  CfOptions o;
  o.threads = 2;
  const auto results = explain_all(generator, context, queries, targets, o);
  EXPECT_EQ(generator.n_batches, 1);
  ASSERT_EQ(results.size(), 4u);
  // Query 0: z[0] = 0 -> p1 0.1, target 1: invalid. Query 2: z[0] = 20 -> p1 0.9, target 0: invalid.
  ASSERT_EQ(results[0].cfs.size(), 1u);
  EXPECT_DOUBLE_EQ(results[0].cfs[0].p1, 0.1);
  EXPECT_FALSE(results[0].cfs[0].valid);
  ASSERT_EQ(results[2].cfs.size(), 1u);
  EXPECT_DOUBLE_EQ(results[2].cfs[0].p1, 0.9);
  EXPECT_FALSE(results[2].cfs[0].valid);
  EXPECT_EQ(results[1].note, "no counterfactual found");
  // Now query 0 with target 0 is valid.
  const auto flipped = explain_all(generator, context, queries, {0, 1, 1, 1}, o);
  EXPECT_TRUE(flipped[0].cfs[0].valid);
  EXPECT_TRUE(flipped[2].cfs[0].valid);

  generator.shift_queries = true;
  o.threads = 1;  // the first bad result is then result 0
  EXPECT_THROW_WITH(explain_all(generator, context, queries, targets, o), Error,
                    "whole-batch: result 0 is for query 1");
  const std::vector<int> two_targets = {1, 1};
  EXPECT_THROW_WITH(explain_all(generator, context, queries, two_targets, o), Error,
                    "explain_all: 2 targets for 4 queries");
}

TEST(CfBatch, ExplainRowsIsMakePrepareExplainAllAndMetrics) {
  const Cohort& c = cohort();
  const data::Matrix& q = c.c.queries;
  const auto targets = flip_targets(*c.c.f, q);
  ASSERT_EQ(targets.size(), q.n_rows);
  for (std::size_t i = 0; i < q.n_rows; ++i) {
    EXPECT_NE(targets[i], c.c.f->predict(std::vector<double>(q.row(i), q.row(i) + q.n_cols))) << i;
  }
  for (const std::string method : {"nice-sparsity", "dice-random", "cfnow-random"}) {
    const CfOptions o = options(method, 2);
    const ExplainRun run = explain_rows(o, c.context(), q, targets);
    auto generator = make_generator(o);
    EXPECT_EQ(run.generator_name, generator->name());
    generator->prepare(c.context());
    expect_same(run.results, explain_all(*generator, c.context(), q, targets, o), method);
    const auto by_class = evaluate_by_class(run.results, q, c.c.data.schema, *c.c.f, c.c.data.x);
    ASSERT_EQ(run.by_class.size(), by_class.size()) << method;
    for (const auto& [cls, m] : by_class) {
      ASSERT_TRUE(run.by_class.count(cls)) << method << " class " << cls;
      EXPECT_EQ(run.by_class.at(cls).to_json(), m.to_json()) << method << " class " << cls;
    }
    EXPECT_EQ(run.by_class.at(-1).n_queries, q.n_rows) << method;
    EXPECT_GE(run.prepare_seconds, 0.0) << method;
    EXPECT_GE(run.total_seconds, run.prepare_seconds) << method;
    EXPECT_GT(run.n_model_calls, 0u) << method;
  }
}

// --------------------------------------------------------------------------- CSV file

// a: continuous; c: categorical (a category holding a comma).
data::Schema csv_schema() {
  data::Schema s;
  s.group = "participant";
  s.features = {test::feature("a"), test::feature("c")};
  s.features[1].kind = data::FeatureKind::kCategorical;
  s.features[1].categories = {"x", "y,z"};
  s.features[1].allowed = {0, 1};
  return s;
}

std::vector<QueryResult> csv_results() {
  QueryResult r0;
  r0.query = 0;
  r0.target = 1;
  r0.seconds = 0.25;
  r0.cfs = {Counterfactual{{1.5, 0}, 0.75, true}, Counterfactual{{0.1, 1}, 0.25, false}};
  QueryResult r1;
  r1.query = 1;
  r1.target = 0;
  r1.seconds = 1.5;
  r1.note = "none \"found\", sorry";
  return {r0, r1};
}

const std::vector<std::string> kGroups = {"p0", "p1", "p,2"};
const std::vector<std::size_t> kRows = {2, 0};

const char* const kCsv =
    "row,participant,query,cf_index,found,a,c,target,prediction,probability,valid,seconds,note\n"
    "2,\"p,2\",0,0,1,1.5,x,1,1,0.75,1,0.25,\n"
    "2,\"p,2\",0,1,1,0.1,\"y,z\",1,0,0.25,0,0.25,\n"
    "0,p0,1,0,0,,,0,,,0,1.5,\"none \"\"found\"\", sorry\"\n";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(CfCsv, WritesTheDocumentedBytes) {
  test::TempDir dir;
  const std::string path = dir.file("cfs.csv");
  write_cfs_csv(path, csv_schema(), kGroups, kRows, csv_results());
  EXPECT_EQ(read_text(path), kCsv);
  EXPECT_THROW_WITH(write_cfs_csv(dir.file("no/such/dir.csv"), csv_schema(), kGroups, kRows, csv_results()),
                    Error, "cannot write");
}

TEST(CfCsv, RoundTripRecoversRowsTargetsAndValues) {
  test::TempDir dir;
  const std::string path = dir.file("cfs.csv");
  write_cfs_csv(path, csv_schema(), kGroups, kRows, csv_results());
  const CfsCsv file = read_cfs_csv(path, csv_schema(), kGroups.size());
  EXPECT_EQ(file.rows, kRows);
  const auto written = csv_results();
  ASSERT_EQ(file.results.size(), written.size());
  for (std::size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ(file.results[i].query, i);
    EXPECT_EQ(file.results[i].target, written[i].target);
    EXPECT_EQ(file.results[i].seconds, written[i].seconds);
    ASSERT_EQ(file.results[i].cfs.size(), written[i].cfs.size());
    for (std::size_t k = 0; k < written[i].cfs.size(); ++k)
      EXPECT_EQ(file.results[i].cfs[k].x, written[i].cfs[k].x);
  }
}

TEST(CfCsv, RoundTripOfACohortRunKeepsEveryValue) {
  const Cohort& c = cohort();
  const data::Matrix& q = c.c.queries;
  const ExplainRun run = explain_rows(options("dice-random", 2), c.context(), q, flip_targets(*c.c.f, q));
  ASSERT_GT(n_cfs(run.results), 0u);
  const std::vector<std::size_t>& rows = c.c.rows;
  test::TempDir dir;
  const std::string path = dir.file("cfs.csv");
  write_cfs_csv(path, c.c.data.schema, c.c.data.group, rows, run.results);
  const CfsCsv file = read_cfs_csv(path, c.c.data.schema, c.c.data.size());
  EXPECT_EQ(file.rows, rows);
  ASSERT_EQ(file.results.size(), run.results.size());
  for (std::size_t i = 0; i < run.results.size(); ++i) {
    EXPECT_EQ(file.results[i].target, run.results[i].target);
    ASSERT_EQ(file.results[i].cfs.size(), run.results[i].cfs.size()) << i;
    for (std::size_t k = 0; k < run.results[i].cfs.size(); ++k)
      EXPECT_EQ(file.results[i].cfs[k].x, run.results[i].cfs[k].x) << i << " " << k;
  }
  // The metrics of the file are those of the run (what `sensecf evaluate-cf` relies on).
  const auto by_class =
      evaluate_by_class(file.results, c.c.data.x.rows(file.rows), c.c.data.schema, *c.c.f, c.c.data.x);
  EXPECT_EQ(by_class.at(-1).distance, run.by_class.at(-1).distance);
  EXPECT_EQ(by_class.at(-1).validity, run.by_class.at(-1).validity);
}

// kCsv with `from` replaced by `to` (once).
std::string damaged(const std::string& from, const std::string& to) {
  std::string s = kCsv;
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(CfCsv, MalformedFilesNameFileAndLine) {
  test::TempDir dir;
  const auto schema = csv_schema();
  auto read = [&](const std::string& name, const std::string& text) {
    return read_cfs_csv(dir.write(name, text), schema, 3);
  };
  EXPECT_NO_THROW(read("good.csv", kCsv));
  EXPECT_THROW_WITH(read("nocol.csv", damaged(",a,c,", ",a,d,")), Error,
                    "nocol.csv:1: no column for feature 'c'");
  EXPECT_THROW_WITH(read("notarget.csv", damaged(",target,", ",goal,")), Error,
                    "notarget.csv:1: no column 'target'");
  EXPECT_THROW_WITH(read("fields.csv", damaged("0,p0,1,0,0,,,", "0,p0,1,0,0,,")), Error,
                    "fields.csv:4: expected 13 fields, found 12");
  EXPECT_THROW_WITH(read("number.csv", damaged(",1.5,x,", ",abc,x,")), Error,
                    "number.csv:2:15: a expects a number, found 'abc'");
  EXPECT_THROW_WITH(read("row.csv", damaged("0,p0,", "x,p0,")), Error,
                    "row.csv:4:1: row expects a number, found 'x'");
  EXPECT_THROW_WITH(read("category.csv", damaged("\"y,z\"", "w")), Error,
                    "category.csv:3:19: 'w' is not a category of 'c' (x, y,z)");
  EXPECT_THROW_WITH(read("outside.csv", damaged("0,p0,", "7,p0,")), Error,
                    "outside.csv:4: row 7 is outside the data file (3 rows)");
  EXPECT_THROW_WITH(read("empty.csv", ""), Error, "empty.csv: the file is empty");
  EXPECT_THROW_WITH(read("fraction.csv", damaged("0,p0,", "0.5,p0,")), Error,
                    "fraction.csv:4:1: row '0.5' is not a row index");
  EXPECT_THROW_WITH(read("negative.csv", damaged("0,p0,", "-1,p0,")), Error,
                    "negative.csv:4:1: row '-1' is not a row index");
  EXPECT_THROW_WITH(read("target.csv", damaged(",x,1,1,0.75", ",x,7,1,0.75")), Error,
                    "target.csv:2:21: target must be 0 or 1, found '7'");
  EXPECT_THROW_WITH(read("nan.csv", damaged(",1.5,x,", ",nan,x,")), Error, "nan.csv:2:15: a is 'nan', not a finite number");
  // With the data's patient ids: a line whose patient is not the data row's is refused.
  EXPECT_NO_THROW(read_cfs_csv(dir.write("groups.csv", kCsv), schema, kGroups));
  EXPECT_THROW_WITH(read_cfs_csv(dir.write("other.csv", damaged("0,p0,", "0,p1,")), schema, kGroups), Error,
                    "other.csv:4:3: row 0 is patient 'p0' in the data file, but 'p1' in this file");
  EXPECT_THROW_WITH(read_cfs_csv(dir.file("missing.csv"), schema, 3), Error, "cannot open");
}

}  // namespace
}  // namespace sensecf::cf
