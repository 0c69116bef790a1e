// Binary classification metrics with scikit-learn's definitions.
//
// accuracy_score, precision/recall/f1 for pos_label=1 with zero_division=0, and
// roc_auc_score (trapezoidal ROC over distinct thresholds; tied scores give the
// diagonal segment, i.e. the Mann-Whitney U with ties counted 1/2).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sensecf::clf {

struct Metrics {
  double accuracy = 0, precision = 0, recall = 0, f1 = 0, auc = 0;
  std::size_t n = 0;

  // "acc=0.7200 pre=0.6800 rec=0.6800 f1=0.6800 auc=0.7800 n=1234"
  std::string line() const;
  nlohmann::json to_json() const;
};

// y_true in {0,1}; scores = P(y=1). Predictions are scores > 0.5 (argmax, ties to 0).
Metrics evaluate(const std::vector<int>& y_true, const std::vector<double>& scores);
// AUC alone; NaN when only one class is present (scikit-learn raises there).
double roc_auc(const std::vector<int>& y_true, const std::vector<double>& scores);

}  // namespace sensecf::clf
