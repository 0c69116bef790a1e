// NF4 weights (llm/model/nf4.h): bitsandbytes' table and packing order, exact
// reconstruction of table values, the error bound of a block, double
// quantisation, the memory per weight, nf4_linear under autograd, and a
// decoder whose projections are NF4 (QLoRA: the adapter trains, the base
// weights are not listed and cannot take a merge). The comparison with an
// independent NumPy NF4 is tests/python/test_nf4_golden.py.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "llm_util.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/decoder.h"
#include "sensecf/llm/model/nf4.h"
#include "sensecf/llm/train/trainer.h"

namespace sensecf::llm {
namespace {

TEST(Nf4, TablesAreBitsandbytesOnes) {
  const auto& code = nf4_code();
  EXPECT_EQ(code.front(), -1.0f);
  EXPECT_EQ(code[7], 0.0f);
  EXPECT_EQ(code.back(), 1.0f);
  EXPECT_TRUE(std::is_sorted(code.begin(), code.end()));
  const auto& dyn = dynamic_map_code();
  EXPECT_TRUE(std::is_sorted(dyn.begin(), dyn.end()));
  EXPECT_EQ(dyn.back(), 1.0f);
  EXPECT_EQ(std::count(dyn.begin(), dyn.end(), 0.0f), 1);
  // Signed: every value but 0 and 1 has its negative; the smallest is -(0.1 + 0.9 / 128) ... about -0.99297.
  for (float v : dyn) {
    if (v != 0.0f && v != 1.0f) {
      EXPECT_NE(std::find(dyn.begin(), dyn.end(), -v), dyn.end()) << v;
    }
  }
  EXPECT_NEAR(dyn.front(), -0.9929688f, 1e-6);
  EXPECT_EQ(dyn[127], 0.0f);  // 127 negatives below it
}

TEST(Nf4, TheFirstWeightGoesInTheHighNibble) {
  const auto w = quantize_nf4(torch::tensor({-1.0f, 1.0f, 1.0f, -1.0f, 0.0f}), 2);
  ASSERT_EQ(w.packed.numel(), 3);  // 5 weights, padded to 6 nibbles
  EXPECT_EQ(w.packed[0].item<int>(), 0x0F);
  EXPECT_EQ(w.packed[1].item<int>(), 0xF0);
  EXPECT_EQ(w.packed[2].item<int>() >> 4, 7);  // 0 -> index 7 (its block's absmax is 0)
  EXPECT_TRUE(torch::equal(w.dequantize(torch::kFloat32), torch::tensor({-1.0f, 1.0f, 1.0f, -1.0f, 0.0f})));
}

TEST(Nf4, TableValuesComeBackExactlyAndOthersWithinHalfAGap) {
  const auto& code = nf4_code();
  auto exact = torch::from_blob(const_cast<float*>(code.data()), {16}, torch::kFloat32).clone() * 0.375f;
  const auto q = quantize_nf4(exact.repeat({4}), 64);
  EXPECT_TRUE(torch::equal(q.dequantize(torch::kFloat32), exact.repeat({4})));

  torch::manual_seed(5);
  const auto w = torch::randn({48, 40}) * 0.02;  // 1920 weights: 30 blocks
  const auto nf4 = quantize_nf4(w, 64);
  const auto back = nf4.dequantize(torch::kFloat32);
  ASSERT_EQ(back.sizes(), w.sizes());
  const auto err = (back - w).abs().reshape({-1, 64});
  const auto absmax = w.abs().reshape({-1, 64}).amax(1);
  float widest = 0;
  for (int i = 0; i + 1 < 16; ++i) widest = std::max(widest, code[i + 1] - code[i]);
  EXPECT_TRUE((err.amax(1) <= absmax * (widest / 2) * 1.0001).all().item<bool>());
  EXPECT_TRUE(torch::equal(nf4.absmax, absmax));
}

TEST(Nf4, DoubleQuantisationKeepsTheScalesAndSavesTheirBits) {
  torch::manual_seed(6);
  const auto w = torch::randn({256, 256}) * 0.02;  // 1024 blocks: 4 second-level blocks
  const auto single = quantize_nf4(w, 64, false), dq = quantize_nf4(w, 64, true);
  EXPECT_FALSE(dq.absmax.defined());
  ASSERT_EQ(dq.absmax_q.numel(), 1024);
  ASSERT_EQ(dq.absmax_scale.numel(), 4);
  const auto rel = ((dq.block_absmax() - single.absmax).abs() / single.absmax).max().item<float>();
  EXPECT_LT(rel, 0.02f) << "8-bit dynamic codes of the centred scales";
  EXPECT_GT(rel, 0.0f);
  const double bits_single = 8.0 * static_cast<double>(single.bytes()) / static_cast<double>(w.numel());
  const double bits_dq = 8.0 * static_cast<double>(dq.bytes()) / static_cast<double>(w.numel());
  EXPECT_DOUBLE_EQ(bits_single, 4.5);                    // 4 + 32/64
  EXPECT_NEAR(bits_dq, 4.0 + 8.0 / 64 + 32.0 / (64 * 256), 1e-3);  // QLoRA's 4.127
}

TEST(Nf4, LinearBackpropagatesThroughTheDequantisedWeight) {
  torch::manual_seed(7);
  const auto w = torch::randn({24, 32}) * 0.1;
  const auto nf4 = quantize_nf4(w, 64);
  const auto dense = nf4.dequantize(torch::kFloat32);
  auto x1 = torch::randn({3, 5, 32}).requires_grad_(true);
  auto x2 = x1.detach().clone().requires_grad_(true);
  const auto y1 = nf4_linear(x1, nf4), y2 = torch::matmul(x2, dense.t());
  EXPECT_TRUE(torch::allclose(y1, y2, 0, 0));
  (y1 * y1).sum().backward();
  (y2 * y2).sum().backward();
  EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad(), 1e-6, 1e-6));
  EXPECT_FALSE(nf4.packed.requires_grad());
}

TEST(Nf4, AQuantisedDecoderTrainsItsAdapterAndRefusesAMerge) {
  ModelOptions options;
  options.quant = "nf4-dq";
  auto model = Decoder::load(test::tiny_checkpoint("llama"), options);
  for (const auto& [name, t] : model->base_weights()) EXPECT_EQ(name.find("_proj"), std::string::npos) << name;
  LoraConfig config;
  config.r = 4;
  config.lora_alpha = 8;
  config.targets = LoraConfig::Targets::kAllLinear;
  const auto adapter = init_lora_adapter(config, model->config(), LoraInit::kRandom, 2);
  model->attach(adapter);
  model->set_lora_trainable(true);
  const auto ids = torch::tensor(std::vector<std::int64_t>{3, 8, 1, 9, 4}).view({1, 5});
  const auto logits = model->forward(ids, torch::ones({1, 5}, torch::kLong));
  logits.pow(2).mean().backward();
  int with_grad = 0;
  for (const auto& [name, t] : model->lora_parameters()) with_grad += t.grad().defined() ? 1 : 0;
  EXPECT_EQ(with_grad, static_cast<int>(model->lora_parameters().size()));

  auto merged = Decoder::load(test::tiny_checkpoint("llama"), options);
  EXPECT_THROW_WITH(merged->attach(adapter, /*merge=*/true), UsageError, "cannot be merged into NF4 weights");
  options.quant = "int3";
  EXPECT_THROW_WITH(Decoder::load(test::tiny_checkpoint("llama"), options), UsageError, "unknown quantisation 'int3'");
}

TEST(Nf4, QLoraFineTuningRunsAndResumesExactly) {
  test::TempDir dir;
  std::string data;
  for (int i = 0; i < 8; ++i) {
    data += "{\"prompt\": \"glucose " + std::to_string(150 + i) + ". change:\", \"completion\": \" glucose 110\"}\n";
  }
  FinetuneOptions o;
  o.model_dir = test::tiny_checkpoint("llama");
  o.data_path = dir.write("d.jsonl", data);
  o.model.quant = "nf4";
  o.r = 4;
  o.alpha = 8;
  o.batch_size = 2;
  o.grad_accum = 2;
  o.max_steps = 4;
  o.eval_fraction = 0;
  o.log_every = 0;
  o.out_dir = dir.file("whole");
  const auto whole = finetune(o);
  ASSERT_EQ(whole.steps, 4);
  EXPECT_TRUE(std::isfinite(whole.curve.back().loss));
  o.out_dir = dir.file("split");
  int polls = 0;
  EXPECT_TRUE(finetune(o, [&] { return ++polls == 2; }).interrupted);
  const auto resumed = finetune(o);
  ASSERT_EQ(resumed.resumed_from, 2);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed.curve[i].loss, whole.curve[i].loss) << i;
  o.model.quant = "none";  // the checkpoint was trained on NF4 weights: another base is refused
  EXPECT_THROW_WITH(finetune(o), UsageError, "(quant differ)");
}

}  // namespace
}  // namespace sensecf::llm
