// DiCE (Mothilal, Sharma & Tan, FAT* 2020; reference code dice-ml 0.12): the
// model-agnostic random, genetic and kd-tree methods, and the gradient method for
// the NN (LibTorch autograd), with dice-ml's losses, defaults, MAD weights and
// post-hoc sparsity. Known dice-ml bugs are fixed and documented where they are.
#pragma once

#include <memory>

#include "sensecf/cf/generator.h"

namespace sensecf::cf {

std::unique_ptr<Generator> make_dice_random(const CfOptions& options);
std::unique_ptr<Generator> make_dice_genetic(const CfOptions& options);
std::unique_ptr<Generator> make_dice_kdtree(const CfOptions& options);
std::unique_ptr<Generator> make_dice_gradient(const CfOptions& options);  // NN only

}  // namespace sensecf::cf
