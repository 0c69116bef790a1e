// What decoder.cpp and generation.cpp share (model module internal): the KV
// cache of incremental decoding, whether this build can replay the decode
// steps as a CUDA graph (SENSECF_TORCH_CUDA=1: the build found a CUDA LibTorch),
// and generate's sampler on device tensors.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "sensecf/llm/model/options.h"

#if defined(SENSECF_TORCH_CUDA) && SENSECF_TORCH_CUDA
#define SENSECF_CUDA_GRAPHS 1
#else
#define SENSECF_CUDA_GRAPHS 0
#endif

namespace sensecf::llm {

// Per layer, keys and values live in buffers of `capacity` positions that grow
// by doubling (generate reserves prompt + new tokens up front), so a decode
// step writes one column instead of copying the whole cache.
struct KvCache {
  std::vector<torch::Tensor> k, v;  // per layer [B, K, capacity, D]; the first S = mask.size(1) are filled
  long reserved = 0;             // capacity to allocate on first use
  torch::Tensor mask;            // [B, S] 1 = real token, 0 = padding
  torch::Tensor next_position;   // [B] position id of the next token

  // Writes [B, K, T, D] to layer l at positions [start, start + T); returns the
  // filled part [B, K, start + T, D].
  std::pair<torch::Tensor, torch::Tensor> append(std::size_t l, const torch::Tensor& key, const torch::Tensor& value,
                                                 long start);
};

// generate's sampler: temperature -> top-k -> top-p (transformers' order and
// rules) over the rows of scores [R, N] (the vocabulary's logits, or a row's
// allowed ids with -inf padding), in fp32 on their device, all rows at once;
// then for row r the first token, most likely first, whose cumulative mass
// exceeds uniforms[r] (in [0, 1)) times the kept mass. Without top-k and top-p
// the cumulative mass runs in column order. Returns the columns [R] (int64,
// on the device). o.temperature must be > 0.
torch::Tensor sample_tokens(const torch::Tensor& scores, const GenerationOptions& o, const torch::Tensor& uniforms);

}  // namespace sensecf::llm
