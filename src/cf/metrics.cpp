// CF metrics (see docs/cf-metrics.md for the formulas).
#include "sensecf/cf/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace sensecf::cf {
namespace {

double feature_range(const data::Feature& f) {
  const double r = f.upper - f.lower;
  return r > 1e-12 ? r : 1.0;
}

bool differs(double a, double b) { return std::abs(a - b) > 1e-9 * std::max(1.0, std::abs(a)); }

bool inside_training_ranges(const data::Schema& schema, const std::vector<double>& cf) {
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const auto& f = schema.features[j];
    if (f.is_categorical()) {
      if (std::find(f.allowed.begin(), f.allowed.end(), static_cast<int>(cf[j])) == f.allowed.end()) return false;
    } else if (cf[j] < f.lower - 1e-9 || cf[j] > f.upper + 1e-9) {
      return false;
    }
  }
  return true;
}

// The k nearest training rows of `row` under cf_distance (brute force: exact).
std::vector<std::size_t> nearest(const data::Schema& schema, const data::Matrix& train_x, const double* row,
                                 std::size_t k, std::vector<double>* distances) {
  std::vector<std::pair<double, std::size_t>> d(train_x.n_rows);
  for (std::size_t i = 0; i < train_x.n_rows; ++i) d[i] = {cf_distance(schema, row, train_x.row(i)), i};
  k = std::min(k, d.size());
  std::partial_sort(d.begin(), d.begin() + static_cast<long>(k), d.end());
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < k; ++i) {
    out.push_back(d[i].second);
    if (distances) distances->push_back(d[i].first);
  }
  return out;
}

}  // namespace

double cf_distance(const data::Schema& schema, const double* a, const double* b) {
  double l2 = 0, hamming = 0;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const auto& f = schema.features[j];
    if (f.is_categorical()) {
      hamming += a[j] != b[j] ? 1.0 : 0.0;
    } else {
      const double z = (a[j] - b[j]) / feature_range(f);
      l2 += z * z;
    }
  }
  return std::sqrt(l2) + hamming;
}

int changed_features(const data::Schema& schema, const double* a, const double* b) {
  int n = 0;
  for (std::size_t j = 0; j < schema.size(); ++j) n += differs(a[j], b[j]) ? 1 : 0;
  return n;
}

CfMetrics evaluate_cfs(const std::vector<QueryResult>& results, const data::Matrix& queries,
                       const data::Schema& schema, const BlackBox& f, const data::Matrix& train_x,
                       const MetricOptions& options) {
  CfMetrics m;
  m.n_queries = results.size();
  std::size_t covered = 0, first_valid = 0, valid = 0, plausible = 0, n_answers = 0, n_parsed = 0;
  double distance = 0, sparsity = 0, violations = 0, redundancy = 0, knn = 0, ynn_disagree = 0, seconds = 0;
  std::size_t ynn_count = 0;
  const auto k = static_cast<std::size_t>(std::max(1, options.neighbours));
  for (const auto& r : results) {
    seconds += r.seconds;
    n_answers += r.answers.size();
    n_parsed += static_cast<std::size_t>(std::max(0, r.n_parsed));
    const double* x = queries.row(r.query);
    covered += r.cfs.empty() ? 0 : 1;
    for (std::size_t i = 0; i < r.cfs.size(); ++i) {
      const auto& c = r.cfs[i];
      ++m.n_cfs;
      const bool is_valid = (f.predict_proba(c.x) > 0.5 ? 1 : 0) == r.target;
      first_valid += i == 0 && is_valid ? 1 : 0;
      valid += is_valid ? 1 : 0;
      distance += cf_distance(schema, x, c.x.data());
      sparsity += changed_features(schema, x, c.x.data());
      plausible += inside_training_ranges(schema, c.x) ? 1 : 0;
      for (std::size_t j = 0; j < schema.size(); ++j)
        violations += schema.features[j].immutable && differs(x[j], c.x[j]) ? 1.0 : 0.0;
      // Redundancy (CARLA): changed features whose reset keeps the CF's class.
      if (is_valid) {
        data::Matrix undo(0, schema.size());
        for (std::size_t j = 0; j < schema.size(); ++j) {
          if (!differs(x[j], c.x[j])) continue;
          std::vector<double> row = c.x;
          row[j] = x[j];
          undo.values.insert(undo.values.end(), row.begin(), row.end());
          ++undo.n_rows;
        }
        if (undo.n_rows) {
          for (double p : f.predict_proba(undo)) redundancy += (p > 0.5 ? 1 : 0) == r.target ? 1.0 : 0.0;
        }
      }
      // Distributional plausibility: the CF's k nearest training rows.
      std::vector<double> dist;
      const auto nbrs = nearest(schema, train_x, c.x.data(), k, &dist);
      knn += std::accumulate(dist.begin(), dist.end(), 0.0) / static_cast<double>(std::max<std::size_t>(1, dist.size()));
      const int cf_label = f.predict_proba(c.x) > 0.5 ? 1 : 0;
      if (!nbrs.empty()) {
        const auto p = f.predict_proba(train_x.rows(nbrs));
        for (double pi : p) ynn_disagree += std::abs(cf_label - (pi > 0.5 ? 1 : 0));
        ynn_count += p.size();
      }
    }
  }
  const auto per_cf = [&](double v) { return m.n_cfs ? v / static_cast<double>(m.n_cfs) : std::nan(""); };
  const auto per_query = [&](double v) { return m.n_queries ? v / static_cast<double>(m.n_queries) : std::nan(""); };
  m.validity = per_query(static_cast<double>(first_valid));
  m.coverage = per_query(static_cast<double>(covered));
  m.validity_returned = per_cf(static_cast<double>(valid));
  m.parse_rate = n_answers ? static_cast<double>(n_parsed) / static_cast<double>(n_answers) : std::nan("");
  m.distance = per_cf(distance);
  m.sparsity = per_cf(sparsity);
  m.plausibility = per_cf(static_cast<double>(plausible));
  m.violations = per_cf(violations);
  m.redundancy = per_cf(redundancy);
  m.knn_distance = per_cf(knn);
  m.ynn = ynn_count ? 1.0 - ynn_disagree / static_cast<double>(ynn_count) : std::nan("");
  m.seconds_per_query = per_query(seconds);
  m.seconds_per_cf = per_cf(seconds);
  return m;
}

std::map<int, CfMetrics> evaluate_by_class(const std::vector<QueryResult>& results, const data::Matrix& queries,
                                           const data::Schema& schema, const BlackBox& f,
                                           const data::Matrix& train_x, const MetricOptions& options) {
  std::map<int, CfMetrics> out;
  out[-1] = evaluate_cfs(results, queries, schema, f, train_x, options);
  for (int cls = 0; cls < 2; ++cls) {
    std::vector<QueryResult> subset;
    for (const auto& r : results) {
      std::vector<double> x(queries.row(r.query), queries.row(r.query) + queries.n_cols);
      if (f.predict(x) == cls) subset.push_back(r);
    }
    out[cls] = evaluate_cfs(subset, queries, schema, f, train_x, options);
  }
  return out;
}

nlohmann::json CfMetrics::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"n_queries", n_queries},       {"n_cfs", n_cfs},
          {"validity", num(validity)},     {"coverage", num(coverage)},
          {"validity_returned", num(validity_returned)}, {"parse_rate", num(parse_rate)},
          {"distance", num(distance)},     {"sparsity", num(sparsity)},
          {"plausibility", num(plausibility)}, {"ynn", num(ynn)},
          {"knn_distance", num(knn_distance)}, {"violations", num(violations)},
          {"redundancy", num(redundancy)}, {"seconds_per_query", num(seconds_per_query)},
          {"seconds_per_cf", num(seconds_per_cf)}};
}

}  // namespace sensecf::cf
