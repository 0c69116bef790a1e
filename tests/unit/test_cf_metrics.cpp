// CF metrics against hand-computed values (validity and coverage over all queries,
// validity over returned CFs, the LLM parse rate), and the shared constraint helpers.
#include <gtest/gtest.h>

#include <cmath>

#include "sensecf/cf/generator.h"
#include "sensecf/cf/metrics.h"
#include "test_util.h"
#include "threshold_model.h"

namespace sensecf::cf {
namespace {

using test::Threshold;  // f(z) = 1 iff z[0] > 5

data::Schema schema() {
  data::Schema s;
  s.features = {test::feature("a"), test::feature("b"), test::feature("c")};
  s.features[0].lower = 0;
  s.features[0].upper = 10;
  s.features[1].lower = 0;
  s.features[1].upper = 4;
  s.features[2].kind = data::FeatureKind::kCategorical;
  s.features[2].categories = {"x", "y"};
  s.features[2].allowed = {0, 1};
  s.features[2].immutable = true;
  return s;
}

data::Matrix matrix(std::vector<std::vector<double>> rows) {
  data::Matrix m(rows.size(), rows[0].size());
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), m.row(i));
  return m;
}

QueryResult result(std::size_t q, int target, std::vector<std::vector<double>> cfs, double seconds) {
  QueryResult r;
  r.query = q;
  r.target = target;
  r.seconds = seconds;
  for (auto& x : cfs) r.cfs.push_back(Counterfactual{x, 0, false});
  return r;
}

TEST(CfMetrics, HandComputedValues) {
  Threshold model;
  BlackBox f(model);
  const auto s = schema();
  const auto queries = matrix({{2, 1, 0}, {8, 3, 1}, {9, 2, 0}});
  const auto train = matrix({{1, 1, 0}, {9, 1, 0}});
  const std::vector<QueryResult> results = {result(0, 1, {{6, 1, 0}, {7, 5, 0}}, 1.0), result(1, 0, {}, 2.0),
                                            result(2, 0, {{4, 2, 1}}, 3.0)};
  MetricOptions o;
  o.neighbours = 1;
  const auto by_class = evaluate_by_class(results, queries, s, f, train, o);
  const CfMetrics& m = by_class.at(-1);
  EXPECT_EQ(m.n_queries, 3u);
  EXPECT_EQ(m.n_cfs, 3u);
  // Validity over all queries: q0's first CF (6,1,0) and q2's (4,2,1) are valid, q1 has
  // none -> 2/3 (validity over the returned CFs alone would be 3/3).
  EXPECT_NEAR(m.validity, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.coverage, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.validity_returned, 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(m.parse_rate));  // a baseline: no answers, not applicable
  EXPECT_TRUE(m.to_json().at("parse_rate").is_null());
  EXPECT_NEAR(m.distance, (0.4 + std::sqrt(0.25 + 1.0) + 1.5) / 3, 1e-12);
  EXPECT_NEAR(m.sparsity, 5.0 / 3, 1e-12);
  EXPECT_NEAR(m.plausibility, 2.0 / 3, 1e-12);  // b = 5 is above the training maximum 4
  EXPECT_NEAR(m.violations, 1.0 / 3, 1e-12);    // the immutable c changed once
  EXPECT_NEAR(m.redundancy, 2.0 / 3, 1e-12);    // (7,5,0): b unneeded; (4,2,1): c unneeded
  EXPECT_NEAR(m.ynn, 1.0, 1e-12);
  EXPECT_NEAR(m.knn_distance, (0.3 + std::sqrt(0.04 + 1.0) + std::sqrt(0.09 + 0.0625) + 1.0) / 3, 1e-12);
  EXPECT_NEAR(m.seconds_per_query, 2.0, 1e-12);
  EXPECT_NEAR(m.seconds_per_cf, 2.0, 1e-12);

  EXPECT_EQ(by_class.at(0).n_queries, 1u);  // f(q0) = 0
  EXPECT_EQ(by_class.at(0).n_cfs, 2u);
  EXPECT_NEAR(by_class.at(0).validity, 1.0, 1e-12);
  EXPECT_EQ(by_class.at(1).n_queries, 2u);
  EXPECT_NEAR(by_class.at(1).coverage, 0.5, 1e-12);
  EXPECT_NEAR(by_class.at(1).validity, 0.5, 1e-12);
  EXPECT_NEAR(by_class.at(1).validity_returned, 1.0, 1e-12);
}

// An LLM-style run: each query has raw answers, some of which did not parse.
// q0: 2 answers, 1 parsed, its CF (6,1,0) valid; q1: 1 answer that did not parse
// (no CF); q2: 1 answer, parsed, its CF (7,1,0) invalid for target 0; q3: 2
// answers, both parsed, first CF (3,1,0) invalid, second (9,1,0) valid.
TEST(CfMetrics, ParseFailuresCountAsInvalid) {
  Threshold model;
  BlackBox f(model);
  const auto s = schema();
  const auto queries = matrix({{2, 1, 0}, {2, 2, 0}, {8, 1, 0}, {1, 1, 0}});
  const auto train = matrix({{1, 1, 0}, {9, 1, 0}});
  auto llm = [](QueryResult r, std::vector<std::string> answers, int n_parsed) {
    r.answers = std::move(answers);
    r.n_parsed = n_parsed;
    return r;
  };
  const std::vector<QueryResult> results = {
      llm(result(0, 1, {{6, 1, 0}}, 1.0), {"deep_pct: 18.0", "I cannot help with that"}, 1),
      llm(result(1, 1, {}, 1.0), {"a = 1.0, b ="}, 0),
      llm(result(2, 0, {{7, 1, 0}}, 1.0), {"a: 7"}, 1),
      llm(result(3, 1, {{3, 1, 0}, {9, 1, 0}}, 1.0), {"a: 3", "a: 9"}, 2)};
  const CfMetrics m = evaluate_cfs(results, queries, s, f, train);
  EXPECT_EQ(m.n_queries, 4u);
  EXPECT_EQ(m.n_cfs, 4u);
  EXPECT_NEAR(m.validity, 1.0 / 4, 1e-12);           // only q0's first CF; q1 (unparsed) counts as invalid
  EXPECT_NEAR(m.coverage, 3.0 / 4, 1e-12);           // q1 returned nothing
  EXPECT_NEAR(m.validity_returned, 2.0 / 4, 1e-12);  // (6,1,0) and (9,1,0) of the 4 returned
  EXPECT_NEAR(m.parse_rate, 4.0 / 6, 1e-12);         // 1 + 0 + 1 + 2 of 2 + 1 + 1 + 2 answers
  EXPECT_NEAR(m.to_json().at("parse_rate").get<double>(), 4.0 / 6, 1e-12);
  EXPECT_NEAR(m.to_json().at("validity").get<double>(), 0.25, 1e-12);
}

TEST(CfMetrics, InvalidCfsAndNoCfs) {
  Threshold model;
  BlackBox f(model);
  const auto s = schema();
  const auto queries = matrix({{2, 1, 0}});
  const auto train = matrix({{1, 1, 0}});
  auto m = evaluate_cfs({result(0, 1, {{3, 1, 0}}, 1.0)}, queries, s, f, train);
  EXPECT_EQ(m.validity, 0.0);
  EXPECT_EQ(m.validity_returned, 0.0);
  EXPECT_EQ(m.coverage, 1.0);    // a CF was returned, though not a valid one
  EXPECT_EQ(m.redundancy, 0.0);  // computed over valid CFs only
  // No CF at all: validity and coverage are 0 (a failure), the per-CF metrics undefined.
  m = evaluate_cfs({result(0, 1, {}, 1.0)}, queries, s, f, train);
  EXPECT_EQ(m.validity, 0.0);
  EXPECT_EQ(m.coverage, 0.0);
  EXPECT_TRUE(std::isnan(m.validity_returned));
  EXPECT_TRUE(m.to_json().at("validity_returned").is_null());
  EXPECT_TRUE(std::isnan(m.distance));
}

TEST(Constraints, CountAndEnforce) {
  const auto s = schema();
  const std::vector<double> x = {2, 1, 0};
  EXPECT_EQ(count_violations(s, x, {6, 1, 0}), 0);
  EXPECT_EQ(count_violations(s, x, {6, 5, 1}), 2);    // b out of range, immutable c changed
  EXPECT_EQ(count_violations(s, x, {-1, 1, 0}), 1);
  std::vector<double> cf = {12, -3, 1};
  enforce_constraints(s, x, cf);
  EXPECT_EQ(cf, (std::vector<double>{10, 0, 0}));
  EXPECT_EQ(count_violations(s, x, cf), 0);
}

}  // namespace
}  // namespace sensecf::cf
