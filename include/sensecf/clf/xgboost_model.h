// Gradient-boosted trees and random forest through XGBoost's C API.
//
// One class, two modes:
//   "xgb": binary:logistic boosting, eta = xgb_eta, max_depth = xgb_max_depth,
//          xgb_rounds rounds.
//   "rf":  XGBoost's random-forest mode: one round of num_parallel_tree = rf_trees
//          trees, subsample 0.632, colsample_bynode sqrt(d)/d, learning_rate 1,
//          max_depth = rf_max_depth.
// Trees see raw features (categorical codes as numbers split fine). The model is
// `model.json` (XGBoost's own JSON format) in the classifier directory.
#pragma once

#include <memory>

#include "sensecf/clf/classifier.h"

namespace sensecf::clf {

// random_forest = false: "xgb"; true: "rf". Deterministic for a given seed.
std::unique_ptr<Classifier> make_xgboost_classifier(const ClfOptions& options, bool random_forest);

}  // namespace sensecf::clf
