// One micro-batch of fine-tuning and its loss, as the trainer (train/trainer.h)
// and `lm bench-train` compute them.
//
// A batch is left-padded to its longest example. The loss is the next-token
// cross-entropy summed over the completion tokens only (TrainExample's ids
// from prompt_len on, never the first token); only those positions go through
// the LM head and the log-softmax, 256 at a time (Decoder::loss_sum_at), so a
// 128k vocabulary costs the logits of 256 answer tokens, not of every position.
//
// Only light ATen headers here; batch.cpp includes <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sensecf/llm/train/data.h"

namespace sensecf::llm {

class Decoder;

struct TrainBatch {
  at::Tensor ids, mask;            // [B, T], left-padded
  at::Tensor rows, cols, targets;  // [K] each: logits[rows, cols] predict targets
  std::int64_t n_loss_tokens = 0;  // K
  std::int64_t n_tokens = 0;       // real (unpadded) tokens
};

// The examples examples[which[0]], examples[which[1]], ... as one batch on `device`.
TrainBatch make_train_batch(const std::vector<TrainExample>& examples, const std::vector<std::size_t>& which,
                            c10::Device device);

// The loss terms one example contributes: its completion tokens after the first token.
std::int64_t loss_token_count(const TrainExample& example);

// Sum (not mean) of the cross-entropy over the batch's completion tokens, fp32,
// under the caller's grad mode.
// head_chunk: completion positions per pass of the head (Decoder::loss_sum_at).
at::Tensor completion_loss_sum(const Decoder& model, const TrainBatch& batch, std::int64_t head_chunk = 256);

}  // namespace sensecf::llm
