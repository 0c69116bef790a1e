// NICE (Brughmans, Leyman & Martens, DMKD 2023; reference code NICEx 0.2.3):
// nearest unlike neighbour among correctly classified training rows of the
// target class (HEOM distance as NICEx defines it), then greedy best-first
// copying of the neighbour's feature values with a reward.
#pragma once

#include <memory>
#include <string>

#include "sensecf/cf/generator.h"

namespace sensecf::cf {

// reward: "none" (return the neighbour), "sparsity", "proximity", "plausibility"
// (the last trains a LibTorch autoencoder on the training rows in prepare()).
std::unique_ptr<Generator> make_nice(const CfOptions& options, const std::string& reward);

}  // namespace sensecf::cf
