// Fit on some rows, score on others (see train.h).
#include "sensecf/clf/train.h"

#include <algorithm>

namespace sensecf::clf {

ScoredModel fit_and_score(const ClfOptions& options, const data::Dataset& d, const std::vector<std::size_t>& train,
                          const std::vector<std::size_t>& test) {
  ScoredModel out;
  out.model = make_classifier(options);
  std::vector<int> y_train;
  y_train.reserve(train.size());
  for (auto r : train) y_train.push_back(d.y[r]);
  out.model->fit(d.schema, d.x.rows(train), y_train);
  std::vector<int> y_test;
  y_test.reserve(test.size());
  for (auto r : test) y_test.push_back(d.y[r]);
  out.metrics = evaluate(y_test, out.model->predict_proba(d.x.rows(test)));
  return out;
}

std::vector<double> fig1_reductions(std::vector<double> reductions) {
  if (!reductions.empty() && std::find(reductions.begin(), reductions.end(), 0.0) == reductions.end())
    reductions.insert(reductions.begin(), 0.0);
  return reductions;
}

}  // namespace sensecf::clf
