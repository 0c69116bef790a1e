// Counterfactual quality metrics: the paper's four (Table III) and the stronger
// variants users ask for. Every formula is written out in docs/cf-metrics.md.
//
// Inputs are the generator results for a set of queries. Validity and coverage
// are over ALL queries (a query without a CF, e.g. an LLM answer that did not
// parse, counts as a failure, never dropped); the quality metrics (distance,
// sparsity, plausibility, ...) are over the returned CFs; per factual class: see
// evaluate_by_class. Distances use the permitted range of each continuous
// feature (schema bounds, learned from the training data) as its scale.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sensecf/cf/generator.h"

namespace sensecf::cf {

struct CfMetrics {
  std::size_t n_queries = 0;      // queries evaluated
  std::size_t n_cfs = 0;          // CFs returned
  double validity = 0;            // share of queries whose (first) CF f assigns the target class; no CF: invalid
  double coverage = 0;            // share of queries with a CF returned
  double validity_returned = 0;   // share of returned CFs that f assigns the target class
  double parse_rate = 0;          // sum n_parsed / sum answers over the queries; NaN without answers (baselines)
  double distance = 0;            // mean normalised L2 (continuous) + Hamming (categorical)
  double sparsity = 0;            // mean number of changed features
  double plausibility = 0;        // share of CFs inside the training ranges / categories
  double ynn = 0;                 // CARLA yNN: agreement of f on the CF's y nearest training rows
  double knn_distance = 0;        // mean normalised distance to the k nearest training rows
  double violations = 0;          // mean number of immutable features changed
  double redundancy = 0;          // CARLA: mean number of changes that could be undone, CF staying valid
  double seconds_per_query = 0;
  double seconds_per_cf = 0;      // total generation time / CFs returned

  nlohmann::json to_json() const;
};

struct MetricOptions {
  int neighbours = 5;  // y of yNN and k of the kNN distance
};

// Metrics over `results`; queries: [n_queries, d] factual rows (QueryResult::query
// indexes them); train_x: training rows for yNN / kNN.
CfMetrics evaluate_cfs(const std::vector<QueryResult>& results, const data::Matrix& queries,
                       const data::Schema& schema, const BlackBox& f, const data::Matrix& train_x,
                       const MetricOptions& options = {});

// The same per factual class (the class f predicts for the query: Table III's
// "Class 0" holds the CFs that flip class-0 predictions), keyed 0 and 1; key -1
// is all queries.
std::map<int, CfMetrics> evaluate_by_class(const std::vector<QueryResult>& results, const data::Matrix& queries,
                                           const data::Schema& schema, const BlackBox& f,
                                           const data::Matrix& train_x, const MetricOptions& options = {});

// Normalised distance between a factual and a CF: sqrt(sum over continuous
// ((a-b)/range)^2) + number of differing categorical features.
double cf_distance(const data::Schema& schema, const double* a, const double* b);
// Features that differ (|a-b| > 1e-9 * max(1, |a|)).
int changed_features(const data::Schema& schema, const double* a, const double* b);

}  // namespace sensecf::cf
