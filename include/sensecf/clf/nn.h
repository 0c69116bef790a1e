// The neural-network black box f: a LibTorch MLP on standardised, one-hot
// encoded inputs. This header is torch-free; the model lives in nn.cpp.
#pragma once

#include <memory>

#include "sensecf/clf/classifier.h"

namespace sensecf::clf {

// MLP n_inputs -> hidden[0] -> ... -> 1 (ReLU, dropout), sigmoid output, trained
// with Adam on binary cross-entropy; early stopping on a stratified validation
// share of the training rows restores the best epoch. Seeded and deterministic
// on CPU for a fixed thread count.
std::unique_ptr<Classifier> make_nn_classifier(const ClfOptions& options);

// LibTorch's intra-op threads for this process. Callers that run many small
// predictions in parallel (CF search over queries) set 1 to avoid oversubscription.
void set_torch_threads(int n);

}  // namespace sensecf::clf
