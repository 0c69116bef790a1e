// Support vector machine through libsvm: C-SVC with an RBF kernel and Platt-scaled
// probabilities (libsvm's `-b 1`).
//
// Inputs go through InputEncoder (standardised continuous, one-hot categorical);
// C = svm_c, gamma = svm_gamma or 1 / n_inputs when 0. The classifier directory
// holds `svm.model` (libsvm's own text format) and `encoder.json`.
//
// Determinism: libsvm draws the folds of its internal 5-fold Platt cross-validation
// with the C library's rand(); fit() calls srand(seed) right before svm_train, so
// one seed gives one model -- as long as no other thread calls rand() meanwhile.
#pragma once

#include <memory>

#include "sensecf/clf/classifier.h"

namespace sensecf::clf {

std::unique_ptr<Classifier> make_svm_classifier(const ClfOptions& options);

}  // namespace sensecf::clf
