// Training a classifier on some rows of a data set and scoring it on others:
// what `sensecf train-clf` and the sweep's train_clf and fig1 tasks all do.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "sensecf/clf/classifier.h"
#include "sensecf/clf/metrics.h"
#include "sensecf/data/dataset.h"

namespace sensecf::clf {

struct ScoredModel {
  std::unique_ptr<Classifier> model;
  Metrics metrics;  // on the test rows
};

// Fits a classifier of `options` on d's `train` rows and scores it on its `test` rows.
ScoredModel fit_and_score(const ClfOptions& options, const data::Dataset& d, const std::vector<std::size_t>& train,
                          const std::vector<std::size_t>& test);

// Fig. 1's training-data reductions: `reductions` with 0 (the whole training
// set, the curve's anchor) first when it is missing; empty stays empty.
std::vector<double> fig1_reductions(std::vector<double> reductions);

}  // namespace sensecf::clf
