// Micro-batches and the completion loss (see train/batch.h).
#include "sensecf/llm/train/batch.h"

#include <torch/torch.h>

#include <algorithm>

#include "sensecf/llm/model/decoder.h"

namespace sensecf::llm {

TrainBatch make_train_batch(const std::vector<TrainExample>& examples, const std::vector<std::size_t>& which,
                            c10::Device device) {
  std::size_t T = 0;
  for (auto i : which) T = std::max(T, examples[i].ids.size());
  const auto B = static_cast<std::int64_t>(which.size());
  std::vector<std::int64_t> ids(static_cast<std::size_t>(B) * T, 0), mask(ids.size(), 0), rows, cols, targets;
  TrainBatch b;
  for (std::int64_t r = 0; r < B; ++r) {
    const TrainExample& e = examples[which[static_cast<std::size_t>(r)]];
    const std::size_t offset = T - e.ids.size();
    for (std::size_t i = 0; i < e.ids.size(); ++i) {
      ids[static_cast<std::size_t>(r) * T + offset + i] = e.ids[i];
      mask[static_cast<std::size_t>(r) * T + offset + i] = 1;
      // Token i is predicted by position offset + i - 1: a loss term when it is a completion token.
      if (i >= e.prompt_len && i >= 1) {
        rows.push_back(r);
        cols.push_back(static_cast<std::int64_t>(offset + i - 1));
        targets.push_back(e.ids[i]);
      }
    }
    b.n_tokens += static_cast<std::int64_t>(e.ids.size());
  }
  const auto shape = std::vector<std::int64_t>{B, static_cast<std::int64_t>(T)};
  b.ids = torch::tensor(ids).view(shape).to(device);
  b.mask = torch::tensor(mask).view(shape).to(device);
  b.rows = torch::tensor(rows).to(device);
  b.cols = torch::tensor(cols).to(device);
  b.targets = torch::tensor(targets).to(device);
  b.n_loss_tokens = static_cast<std::int64_t>(targets.size());
  return b;
}

std::int64_t loss_token_count(const TrainExample& e) {
  return static_cast<std::int64_t>(e.ids.size()) -
         static_cast<std::int64_t>(std::max<std::size_t>(e.prompt_len, 1));
}

at::Tensor completion_loss_sum(const Decoder& model, const TrainBatch& b, std::int64_t head_chunk) {
  return model.loss_sum_at(b.ids, b.mask, b.rows, b.cols, b.targets, head_chunk).to(torch::kFloat32);
}

}  // namespace sensecf::llm
