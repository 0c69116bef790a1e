// Torch-level access to a trained NN classifier, for gradient-based CF methods
// (DiCE's gradient method). Includes <torch/torch.h>: use only in translation
// units that already pay for it.
#pragma once

#include <torch/torch.h>

#include "sensecf/clf/classifier.h"
#include "sensecf/clf/preprocess.h"

namespace sensecf::clf {

struct NnModule {
  torch::nn::Sequential net;      // encoded inputs [B, n_inputs] -> logits [B, 1]; eval mode
  const InputEncoder* encoder;    // raw features -> encoded inputs (standardised, one-hot)
};

// The module of a trained NN; throws sensecf::Error if `model` is not an NN.
NnModule nn_module(const Classifier& model);

}  // namespace sensecf::clf
