// Binary classification metrics, written to agree with scikit-learn 1.2:
//   accuracy_score; precision_score / recall_score / f1_score with pos_label=1
//   and zero_division=0; roc_auc_score via roc_curve(drop_intermediate=True) and
//   auc() (numpy.trapz). tests/python/test_metrics_sklearn.py is the golden test.
//
// Deliberately not here: multi-class averaging, sample weights, thresholds other
// than 0.5. Inputs are validated (labels must be 0/1, scores finite) because a
// silently wrong metric is worse than a failed task.
#include "sensecf/clf/metrics.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "sensecf/core/error.h"

namespace sensecf::clf {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_inputs(const std::vector<int>& y_true, const std::vector<double>& scores) {
  if (y_true.size() != scores.size()) {
    throw Error(fmt::format("metrics: {} labels but {} scores", y_true.size(), scores.size()));
  }
  for (std::size_t i = 0; i < y_true.size(); ++i) {
    if (y_true[i] != 0 && y_true[i] != 1) {
      throw Error(fmt::format("metrics: label {} at row {} is not 0 or 1", y_true[i], i));
    }
    if (!std::isfinite(scores[i])) {
      throw Error(fmt::format("metrics: score {} at row {} is not finite", scores[i], i),
                  "a classifier produced NaN/inf probabilities; did its training diverge?");
    }
  }
}

// numpy.trapz(y, x): sum of (x[i+1] - x[i]) * (y[i+1] + y[i]) / 2.
double trapezoid(const std::vector<double>& x, const std::vector<double>& y) {
  double area = 0.0;
  for (std::size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0;
  return area;
}

}  // namespace

double roc_auc(const std::vector<int>& y_true, const std::vector<double>& scores) {
  check_inputs(y_true, scores);
  const std::size_t n = y_true.size();
  const std::size_t n_pos = static_cast<std::size_t>(std::count(y_true.begin(), y_true.end(), 1));
  if (n_pos == 0 || n_pos == n) return kNaN;  // scikit-learn raises: AUC undefined

  // _binary_clf_curve: rows by decreasing score; one ROC point per distinct score
  // (the last row of each tie group), so tied scores give a diagonal segment.
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  std::vector<double> tps, fps;
  double tp = 0.0;
  for (std::size_t k = 0; k < n; ++k) {
    tp += y_true[order[k]];
    const bool last_of_group = k + 1 == n || scores[order[k + 1]] != scores[order[k]];
    if (last_of_group) {
      tps.push_back(tp);
      fps.push_back(static_cast<double>(k + 1) - tp);
    }
  }

  // roc_curve(drop_intermediate=True): keep the ends and every point where the
  // curve bends (non-zero second difference of fps or tps).
  if (tps.size() > 2) {
    std::vector<double> keep_tps{tps.front()}, keep_fps{fps.front()};
    for (std::size_t i = 1; i + 1 < tps.size(); ++i) {
      const double d2_fps = fps[i + 1] - 2.0 * fps[i] + fps[i - 1];
      const double d2_tps = tps[i + 1] - 2.0 * tps[i] + tps[i - 1];
      if (d2_fps != 0.0 || d2_tps != 0.0) {
        keep_tps.push_back(tps[i]);
        keep_fps.push_back(fps[i]);
      }
    }
    keep_tps.push_back(tps.back());
    keep_fps.push_back(fps.back());
    tps.swap(keep_tps);
    fps.swap(keep_fps);
  }

  // Start the curve at (0, 0) and normalise.
  std::vector<double> tpr{0.0}, fpr{0.0};
  const double total_tp = tps.back(), total_fp = fps.back();
  for (std::size_t i = 0; i < tps.size(); ++i) {
    tpr.push_back(tps[i] / total_tp);
    fpr.push_back(fps[i] / total_fp);
  }
  return trapezoid(fpr, tpr);
}

Metrics evaluate(const std::vector<int>& y_true, const std::vector<double>& scores) {
  check_inputs(y_true, scores);
  Metrics m;
  m.n = y_true.size();
  std::size_t tp = 0, fp = 0, fn = 0, correct = 0;
  for (std::size_t i = 0; i < m.n; ++i) {
    const int pred = scores[i] > 0.5 ? 1 : 0;
    correct += pred == y_true[i];
    tp += pred == 1 && y_true[i] == 1;
    fp += pred == 1 && y_true[i] == 0;
    fn += pred == 0 && y_true[i] == 1;
  }
  if (m.n == 0) {
    m.accuracy = kNaN;
    m.auc = kNaN;
    return m;
  }
  const auto d = [](std::size_t v) { return static_cast<double>(v); };
  m.accuracy = d(correct) / d(m.n);
  m.precision = tp + fp > 0 ? d(tp) / d(tp + fp) : 0.0;  // zero_division=0
  m.recall = tp + fn > 0 ? d(tp) / d(tp + fn) : 0.0;
  // scikit-learn 1.2 computes F1 from precision and recall (denominator 0 -> 0).
  const double pr = m.precision + m.recall;
  m.f1 = pr > 0.0 ? 2.0 * m.precision * m.recall / pr : 0.0;
  m.auc = roc_auc(y_true, scores);
  return m;
}

std::string Metrics::line() const {
  return fmt::format("acc={:.4f} pre={:.4f} rec={:.4f} f1={:.4f} auc={:.4f} n={}", accuracy, precision,
                     recall, f1, auc, n);
}

nlohmann::json Metrics::to_json() const {
  // NaN (AUC with one class present) is written as null: JSON has no NaN.
  const auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"accuracy", num(accuracy)}, {"precision", num(precision)}, {"recall", num(recall)},
          {"f1", num(f1)},             {"auc", num(auc)},             {"n", n}};
}

}  // namespace sensecf::clf
