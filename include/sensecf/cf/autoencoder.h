// A small tabular autoencoder: the plausibility score of NICE's
// "plausibility" reward (NICEx takes a user callable that returns a per-row
// reconstruction error and ships none; this is ours).
//
// Encoding: continuous features min-max scaled with the training rows' range
// (a constant feature maps to 0), categorical features one-hot over
// Feature::categories (a code outside 0..k-1 leaves its block at zero):
//
//   x: [n, d]  ->  e: [n, m],  m = n_continuous + sum of k
//   network    m -> 2m -> max(1, m/2) -> 2m -> m, ReLU between layers, linear output
//
// Trained with MSE and Adam for a fixed number of epochs; weights and batch
// order come from sensecf::Rng, never from LibTorch's global generator, so one
// seed gives the same network on every run. LibTorch stays behind a pimpl: this
// header does not include it. Not here: early stopping, GPU training, saving.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf::cf {

struct AutoencoderOptions {
  int epochs = 50;
  int batch_size = 64;
  double learning_rate = 1e-3;
  std::uint64_t seed = 0;
};

class Autoencoder {
 public:
  Autoencoder();
  ~Autoencoder();
  Autoencoder(Autoencoder&&) noexcept;
  Autoencoder& operator=(Autoencoder&&) noexcept;

  // Learns the encoding from x: [n, d], d = schema.size(), and trains the
  // network on it. Throws sensecf::Error when x is empty or does not match.
  void fit(const data::Schema& schema, const data::Matrix& x, const AutoencoderOptions& options);
  bool fitted() const;
  // Per-row mean squared error between the encoded row and its reconstruction:
  // x: [n, d] -> [n]. Safe to call from several threads at once.
  std::vector<double> reconstruction_error(const data::Matrix& x) const;
  // Mean per-row error on the training rows after the last epoch.
  double training_error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sensecf::cf
