// From-scratch training of a tiny Llama (see llm/train/pretrain.h).
#include "sensecf/llm/train/pretrain.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/io/weights.h"
#include "sensecf/llm/model/decoder.h"
#include "sensecf/llm/model/tiny.h"
#include "sensecf/llm/text/bpe_train.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llm/train/optim.h"

namespace sensecf::llm {
namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error("cannot write '" + path + "'");
}

}  // namespace

PretrainResult pretrain_tiny_llama(const std::vector<std::string>& documents, const PretrainOptions& o,
                                   const std::function<bool()>& stop_requested) {
  if (documents.empty()) throw Error("pretrain: the corpus is empty");
  if (o.out_dir.empty()) throw UsageError("pretrain: no output directory");
  const auto began = std::chrono::steady_clock::now();
  const std::string tmp = o.out_dir + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  // The tokenizer, fitted to the corpus.
  write_file(tmp + "/tokenizer.json", byte_level_bpe_json(train_bpe_merges(documents, o.merges)) + "\n");
  const Tokenizer tokenizer = Tokenizer::load(tmp + "/tokenizer.json");
  ModelConfig config = ModelConfig::tiny(Family::kLlama, tokenizer.vocab_size());
  config.hidden_size = o.hidden_size;
  config.intermediate_size = o.intermediate_size;
  config.num_hidden_layers = o.layers;
  config.num_attention_heads = o.heads;
  config.num_key_value_heads = o.kv_heads;
  config.head_dim = o.hidden_size / o.heads;
  config.bos_token_id = tokenizer.token_id("<|begin_of_text|>").value_or(-1);
  config.eos_token_ids = {tokenizer.token_id("<|end_of_text|>").value_or(-1)};
  config.validate("pretrain config");

  // Documents as ids: BOS + text + EOS, cut at max_length.
  std::vector<std::vector<int>> docs;
  std::int64_t n_tokens = 0;
  for (const auto& text : documents) {
    std::vector<int> ids{static_cast<int>(config.bos_token_id)};
    const auto body = tokenizer.encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(static_cast<int>(config.eos_token_ids.front()));
    if (ids.size() > o.max_length) ids.resize(o.max_length);
    n_tokens += static_cast<std::int64_t>(ids.size());
    docs.push_back(std::move(ids));
  }

  ModelOptions mo;
  mo.dtype = "float32";
  Decoder model(config, random_weights(config, torch::kFloat32, torch::kCPU, o.seed), mo);
  std::vector<torch::Tensor> params;
  std::int64_t n_params = 0;
  for (auto& [name, w] : model.base_weights()) {
    w.requires_grad_(true);
    params.push_back(w);
    n_params += w.numel();
  }
  AdamWOptions ao;
  ao.weight_decay = o.weight_decay;
  AdamW optimizer(params, ao);

  // Batches: a permutation per epoch, sorted by length within windows of 16
  // batches (less padding), as the fine-tuning trainer groups them.
  const auto batch = static_cast<std::size_t>(std::max(1, o.batch_size));
  std::vector<std::vector<std::size_t>> plan;
  for (int epoch = 0; epoch < std::max(1, o.epochs); ++epoch) {
    std::vector<std::size_t> order(docs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    Rng rng(derive_seed(o.seed, "pretrain/epoch/" + std::to_string(epoch)));
    rng.shuffle(order);
    const std::size_t window = 16 * batch;
    for (std::size_t w = 0; w < order.size(); w += window) {
      const auto end = order.begin() + static_cast<long>(std::min(order.size(), w + window));
      std::stable_sort(order.begin() + static_cast<long>(w), end,
                       [&](std::size_t a, std::size_t b) { return docs[a].size() < docs[b].size(); });
    }
    for (std::size_t s = 0; s < order.size(); s += batch)
      plan.emplace_back(order.begin() + static_cast<long>(s),
                        order.begin() + static_cast<long>(std::min(order.size(), s + batch)));
  }
  if (o.max_steps > 0 && static_cast<std::size_t>(o.max_steps) < plan.size())
    plan.resize(static_cast<std::size_t>(o.max_steps));
  const auto total = static_cast<std::int64_t>(plan.size());
  const std::int64_t warmup = std::max<std::int64_t>(1, total / 20);

  PretrainResult result;
  result.vocab_size = config.vocab_size;
  result.parameters = n_params;
  std::vector<double> losses;
  std::string curve = "step,loss\n";
  for (std::int64_t step = 0; step < total; ++step) {
    const auto& which = plan[static_cast<std::size_t>(step)];
    std::size_t T = 0;
    for (auto i : which) T = std::max(T, docs[i].size());
    const auto B = static_cast<std::int64_t>(which.size());
    std::vector<std::int64_t> ids(static_cast<std::size_t>(B) * T, 0), mask(ids.size(), 0), rows, cols, targets;
    for (std::int64_t r = 0; r < B; ++r) {
      const auto& d = docs[which[static_cast<std::size_t>(r)]];
      const std::size_t offset = T - d.size();  // left padding, as the decoder expects
      for (std::size_t i = 0; i < d.size(); ++i) {
        ids[static_cast<std::size_t>(r) * T + offset + i] = d[i];
        mask[static_cast<std::size_t>(r) * T + offset + i] = 1;
        if (i >= 1) {
          rows.push_back(r);
          cols.push_back(static_cast<std::int64_t>(offset + i - 1));
          targets.push_back(d[i]);
        }
      }
      result.tokens += static_cast<std::int64_t>(d.size());
    }
    const std::vector<std::int64_t> shape{B, static_cast<std::int64_t>(T)};
    const auto logits = model.forward_at(torch::tensor(ids).view(shape), torch::tensor(mask).view(shape),
                                         torch::tensor(rows), torch::tensor(cols));
    const auto loss = torch::nn::functional::cross_entropy(logits, torch::tensor(targets));
    optimizer.zero_grad();
    loss.backward();
    clip_grad_norm(params, 1.0);
    // Linear warmup, then cosine decay to 10% of lr.
    const double progress = step < warmup ? 0.0 : static_cast<double>(step - warmup) / std::max<std::int64_t>(1, total - warmup);
    const double factor = step < warmup ? static_cast<double>(step + 1) / static_cast<double>(warmup)
                                        : 0.1 + 0.45 * (1.0 + std::cos(M_PI * progress));
    optimizer.step(o.lr * factor);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) throw Error(fmt::format("pretrain: the loss is {} at step {}", value, step + 1));
    losses.push_back(value);
    curve += fmt::format("{},{:.6f}\n", step + 1, value);
    if ((step + 1) % 20 == 0 || step + 1 == total)
      spdlog::info("pretrain: step {}/{} loss {:.3f}", step + 1, total, value);
    if (stop_requested && stop_requested()) {
      fs::remove_all(tmp);
      throw Error(fmt::format("pretrain: stopped by a signal at step {}/{}", step + 1, total),
                  "pretraining a tiny model takes about a minute: it starts over on the next attempt");
    }
  }
  result.steps = total;
  auto mean = [](std::vector<double>::const_iterator a, std::vector<double>::const_iterator b) {
    double s = 0;
    for (auto it = a; it != b; ++it) s += *it;
    return b > a ? s / static_cast<double>(b - a) : 0.0;
  };
  const long k = std::min<long>(10, static_cast<long>(losses.size()));
  result.first_loss = mean(losses.begin(), losses.begin() + k);
  result.last_loss = mean(losses.end() - k, losses.end());

  WeightMap weights;
  for (auto& [name, w] : model.base_weights()) weights[name] = w.detach().contiguous();
  save_weights(tmp + "/model.safetensors", weights, {{"format", "pt"}});
  write_file(tmp + "/config.json", config.to_json());
  write_file(tmp + "/pretrain_curve.csv", curve);
  fs::remove_all(o.out_dir);
  fs::rename(tmp, o.out_dir);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  return result;
}

}  // namespace sensecf::llm
