// The decoder's forward pass under autograd, as LoRA fine-tuning runs it
// (Decoder, sensecf/llm/model/decoder.h), on the tiny random checkpoints: a loss
// on the logits backpropagates to the adapter's A and B and to none of the base
// weights; those gradients match central finite differences of the loss in
// fp64; with B = 0 (PEFT's init) the trainable pass gives the base model's
// logits exactly, and only B gets a gradient.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "llm_util.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/decoder.h"

namespace sensecf::llm {
namespace {

using test::some_ids;

// LoRA of rank 4 on all seven projections of every layer.
LoraAdapter all_linear_adapter(const ModelConfig& model, LoraInit init) {
  LoraConfig config;
  config.r = 4;
  config.lora_alpha = 8;
  config.targets = LoraConfig::Targets::kAllLinear;
  return init_lora_adapter(config, model, init, /*seed=*/7);
}

// Two sequences of 20 and 14 tokens, the second left-padded with id 0:
// ids and mask [2, 20]. Longer than Mistral's tiny sliding window (16).
struct Batch {
  torch::Tensor ids, mask;
};

Batch two_sequences(int vocab) {
  const auto a = some_ids(20, vocab, 1), b = some_ids(14, vocab, 2);
  std::vector<std::int64_t> ids(a.begin(), a.end()), mask(20, 1);
  ids.insert(ids.end(), 6, 0);
  ids.insert(ids.end(), b.begin(), b.end());
  mask.insert(mask.end(), 6, 0);
  mask.insert(mask.end(), 14, 1);
  return {torch::tensor(ids).view({2, 20}), torch::tensor(mask).view({2, 20})};
}

// Mean next-token cross-entropy over the positions whose token and next token
// are both real; logits [B, T, V].
torch::Tensor next_token_loss(const torch::Tensor& logits, const Batch& batch) {
  const long T = logits.size(1);
  const auto log_probs = torch::log_softmax(logits.narrow(1, 0, T - 1), -1);
  const auto next = batch.ids.narrow(1, 1, T - 1).to(logits.device());
  const auto nll = -log_probs.gather(-1, next.unsqueeze(-1)).squeeze(-1);  // [B, T-1]
  const auto real = (batch.mask.narrow(1, 0, T - 1) * batch.mask.narrow(1, 1, T - 1)).to(logits.scalar_type());
  return (nll * real).sum() / real.sum();
}

class LlmAutograd : public ::testing::TestWithParam<std::string> {
 protected:
  std::string model_dir() { return test::tiny_checkpoint(GetParam()); }
};

TEST_P(LlmAutograd, LossReachesTheLoraTensorsOnly) {
  const auto model = Decoder::load(model_dir());
  model->attach(all_linear_adapter(model->config(), LoraInit::kRandom));
  model->set_lora_trainable();
  const auto batch = two_sequences(static_cast<int>(model->config().vocab_size));
  const auto logits = model->forward(batch.ids, batch.mask);
  ASSERT_TRUE(logits.requires_grad());
  EXPECT_EQ(logits.sizes().vec(), std::vector<std::int64_t>({2, 20, model->config().vocab_size}));
  next_token_loss(logits, batch).backward();

  const auto base = model->base_weights();
  EXPECT_EQ(base.size(), 2 + 9 * static_cast<std::size_t>(model->config().num_hidden_layers) +
                             (model->config().tie_word_embeddings ? 0 : 1));
  for (const auto& [name, w] : base) {
    EXPECT_FALSE(w.requires_grad()) << name;
    EXPECT_FALSE(w.grad().defined()) << name;
  }
  const auto lora = model->lora_parameters();
  ASSERT_EQ(lora.size(), 2 * 7 * static_cast<std::size_t>(model->config().num_hidden_layers));
  EXPECT_EQ(lora.front().first, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  for (const auto& [name, t] : lora) {
    EXPECT_TRUE(t.is_leaf()) << name;
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_GT(t.grad().abs().max().item<double>(), 0.0) << name;
  }

  // Inference is untouched: logits() builds no graph and computes what the
  // trainable pass computes for the same (unbatched) sequence.
  const auto ids = some_ids(20, static_cast<int>(model->config().vocab_size), 1);
  const auto inference = model->logits(ids);
  const auto single = model->forward(batch.ids.narrow(0, 0, 1), batch.mask.narrow(0, 0, 1));
  ASSERT_TRUE(single.requires_grad());
  const auto row = single[0].detach().contiguous();
  ASSERT_EQ(static_cast<std::size_t>(row.numel()), inference.size());
  EXPECT_TRUE(torch::equal(row, torch::tensor(inference).view_as(row)));
  // In the padded batch the same sequence differs only by the reassociation of a larger product.
  EXPECT_LT((logits[0].detach() - row).abs().max().item<double>(), 1e-5);

  model->set_lora_trainable(false);
  EXPECT_FALSE(model->forward(batch.ids, batch.mask).requires_grad());
}

// Central differences (L(θ + ε) - L(θ - ε)) / 2ε of the loss in a float64 model
// against the backward pass, for the largest and one ordinary entry of A and B
// of the first and the last adapted projection.
TEST_P(LlmAutograd, LoraGradientsMatchFiniteDifferences) {
  ModelOptions f64;
  f64.dtype = "float64";
  const auto model = Decoder::load(model_dir(), f64);
  model->attach(all_linear_adapter(model->config(), LoraInit::kRandom));
  model->set_lora_trainable();
  const auto batch = two_sequences(static_cast<int>(model->config().vocab_size));
  const auto logits = model->forward(batch.ids, batch.mask);
  ASSERT_EQ(logits.scalar_type(), torch::kFloat64);
  next_token_loss(logits, batch).backward();

  const auto loss_at = [&] {
    torch::NoGradGuard no_grad;
    return next_token_loss(model->forward(batch.ids, batch.mask), batch).item<double>();
  };
  const auto lora = model->lora_parameters();
  ASSERT_GE(lora.size(), 4u);
  const double eps = 1e-6;
  int checked = 0;
  for (const std::size_t p : {std::size_t{0}, std::size_t{1}, lora.size() - 2, lora.size() - 1}) {
    const auto& [name, tensor] = lora[p];
    ASSERT_EQ(tensor.scalar_type(), torch::kFloat64) << name;
    const auto grad = tensor.grad().reshape({-1});
    const auto largest = grad.abs().argmax().item<std::int64_t>();
    for (const std::int64_t i : {largest, grad.numel() / 3}) {
      const double analytic = grad[i].item<double>();
      auto value = tensor.detach().view({-1})[i];  // shares the decoder's storage
      const double original = value.item<double>();
      value.fill_(original + eps);
      const double up = loss_at();
      value.fill_(original - eps);
      const double down = loss_at();
      value.fill_(original);
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(numeric, analytic, 1e-8 + 1e-5 * std::abs(analytic))
          << name << "[" << i << "]: finite difference " << numeric << ", backward " << analytic;
      ++checked;
    }
    EXPECT_GT(std::abs(grad[largest].item<double>()), 1e-6) << name << ": a vanishing gradient checks nothing";
  }
  EXPECT_EQ(checked, 8);
}

// PEFT initialises B = 0, so an adapter starts as a no-op: the trainable pass
// equals the base model's logits exactly (x W^T + s (x A^T) 0^T adds zeros),
// A gets no gradient yet (it only reaches A through B) and B does.
TEST_P(LlmAutograd, ZeroBGivesTheBaseLogitsExactly) {
  const auto base = CausalLM::load(model_dir());
  const auto model = Decoder::load(model_dir());
  model->attach(all_linear_adapter(model->config(), LoraInit::kZero));
  model->set_lora_trainable();
  const auto ids = some_ids(24, static_cast<int>(model->config().vocab_size), 3);
  std::vector<std::int64_t> ids64(ids.begin(), ids.end());
  const auto logits = model->forward(torch::tensor(ids64).view({1, -1}), torch::ones({1, 24}, torch::kInt64));
  ASSERT_TRUE(logits.requires_grad());
  const auto expected = base->logits(ids);
  const auto got = logits[0].detach().contiguous();
  ASSERT_EQ(static_cast<std::size_t>(got.numel()), expected.size());
  EXPECT_TRUE(torch::equal(got, torch::tensor(expected).view_as(got)))
      << "max |difference| " << (got - torch::tensor(expected).view_as(got)).abs().max().item<double>();

  logits.pow(2).mean().backward();
  for (const auto& [name, t] : model->lora_parameters()) {
    ASSERT_TRUE(t.grad().defined()) << name;
    const bool is_a = name.find(".lora_A.") != std::string::npos;
    if (is_a) {
      EXPECT_EQ(t.grad().abs().max().item<double>(), 0.0) << name;
    } else {
      EXPECT_GT(t.grad().abs().max().item<double>(), 0.0) << name;
    }
  }
}

// The training loss with the head in chunks (loss_sum_at, which keeps the
// input's gradient instead of the logits) against forward_at + cross_entropy
// under autograd: the same sum and the same LoRA gradients, in float32 to
// rounding and in float64 to 1e-12, for chunks of 1 and 7 rows (the chunked
// function) and 256 (all 32 rows in one: the plain path); without grad mode
// the same sum.
TEST_P(LlmAutograd, ChunkedHeadLossEqualsTheLogitsAndCrossEntropy) {
  for (const std::string dtype : {"float32", "float64"}) {
    ModelOptions options;
    options.dtype = dtype;
    const auto model = Decoder::load(model_dir(), options);
    model->attach(all_linear_adapter(model->config(), LoraInit::kRandom));
    model->set_lora_trainable();
    const auto batch = two_sequences(static_cast<int>(model->config().vocab_size));
    // Every real position but the last of each row predicts its next token: 19 + 13 = 32 terms.
    std::vector<std::int64_t> rows, cols, targets;
    for (std::int64_t r = 0; r < 2; ++r) {
      for (std::int64_t c = 0; c + 1 < 20; ++c) {
        if (batch.mask[r][c].item<std::int64_t>() == 0) continue;
        rows.push_back(r);
        cols.push_back(c);
        targets.push_back(batch.ids[r][c + 1].item<std::int64_t>());
      }
    }
    ASSERT_EQ(rows.size(), 32u);
    const auto R = torch::tensor(rows), C = torch::tensor(cols), Y = torch::tensor(targets);
    const auto grads = [&](const torch::Tensor& loss) {
      loss.backward();
      std::vector<torch::Tensor> out;
      for (auto& [name, t] : model->lora_parameters()) {
        out.push_back(t.grad().clone());
        t.mutable_grad() = torch::Tensor();
      }
      return out;
    };
    const auto plain = torch::nn::functional::cross_entropy(
        model->forward_at(batch.ids, batch.mask, R, C), Y,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    const double plain_value = plain.item<double>();
    const auto plain_grads = grads(plain);
    const double tol = dtype == "float64" ? 1e-12 : 2e-6;
    for (const std::int64_t chunk : {1, 7, 256}) {
      const auto chunked = model->loss_sum_at(batch.ids, batch.mask, R, C, Y, chunk);
      ASSERT_TRUE(chunked.requires_grad());
      EXPECT_NEAR(chunked.item<double>(), plain_value, tol * std::abs(plain_value)) << dtype << " chunk " << chunk;
      const auto chunked_grads = grads(chunked);
      ASSERT_EQ(chunked_grads.size(), plain_grads.size());
      double worst = 0, scale = 0;
      for (std::size_t i = 0; i < plain_grads.size(); ++i) {
        worst = std::max(worst, (chunked_grads[i] - plain_grads[i]).abs().max().item<double>());
        scale = std::max(scale, plain_grads[i].abs().max().item<double>());
      }
      EXPECT_GT(scale, 0.0);
      EXPECT_LE(worst, tol * scale * 10) << dtype << " chunk " << chunk << ": gradients differ by " << worst;
    }
    torch::NoGradGuard no_grad;
    const auto evaluated = model->loss_sum_at(batch.ids, batch.mask, R, C, Y, 5);
    EXPECT_FALSE(evaluated.requires_grad());
    EXPECT_NEAR(evaluated.item<double>(), plain_value, tol * std::abs(plain_value)) << dtype << " without grad";
  }
}

INSTANTIATE_TEST_SUITE_P(Families, LlmAutograd, ::testing::Values("llama", "mistral"));

// The trainable tensors need an unmerged adapter.
TEST(LlmAutogradErrors, TrainingNeedsAnUnmergedAdapter) {
  const auto dir = test::tiny_checkpoint("llama");
  const auto plain = Decoder::load(dir);
  EXPECT_TRUE(plain->lora_parameters().empty());
  EXPECT_THROW_WITH(plain->set_lora_trainable(), Error, "the model has no adapter");
  const auto merged = Decoder::load(dir);
  merged->attach(all_linear_adapter(merged->config(), LoraInit::kRandom), /*merge=*/true);
  EXPECT_TRUE(merged->lora_parameters().empty());
  EXPECT_THROW_WITH(merged->set_lora_trainable(), Error, "merged into the weights");
  EXPECT_THROW_WITH(merged->attach(all_linear_adapter(merged->config(), LoraInit::kZero)), Error,
                    "already has an adapter");
}

}  // namespace
}  // namespace sensecf::llm
