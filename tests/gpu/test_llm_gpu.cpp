// The LLM stack on a CUDA device, against its own CPU fp32 path (which the
// golden tests tie to NumPy and to transformers): fp32 on CUDA equals the CPU,
// bf16/fp16 track fp32 within their precision, eager and sdpa attention agree,
// a left-padded batch generates what each prompt generates alone, and a PEFT
// adapter applied on the GPU (unmerged and merged) gives the CPU's logits.
//
// Every test skips, saying so, where no CUDA device is visible (CI, laptops);
// scripts/device/gpu-check runs them on a GPU machine. Measured differences are
// printed ("measured: ...") so the GPU run's log records them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "sensecf/core/error.h"
#include "sensecf/llm/lora/adapter.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/model/tiny.h"
#include "llm_util.h"

namespace sensecf::llm {
namespace {

using test::some_ids;

class GpuModel : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { dir_ = new test::TempDir(); }
  static void TearDownTestSuite() { delete dir_; }
  std::string model_dir() { return test::tiny_checkpoint(GetParam()); }
  std::unique_ptr<CausalLM> load(const std::string& device, const std::string& dtype,
                                 const std::string& attention = "eager", const std::string& adapter = "",
                                 bool merge = false) {
    ModelOptions o;
    o.device = device;
    o.dtype = dtype;
    o.attention = attention;
    o.adapter = adapter;
    o.merge_adapter = merge;
    return CausalLM::load(model_dir(), o);
  }
  static test::TempDir* dir_;
};
test::TempDir* GpuModel::dir_ = nullptr;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;  // NaN never passes
    d = std::max(d, std::abs(double(a[i]) - double(b[i])));
  }
  return d;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float x : a) m = std::max(m, std::abs(double(x)));
  return m;
}

void report(const std::string& what, double value) {
  std::cout << "measured: " << what << " = " << value << std::endl;
  ::testing::Test::RecordProperty(what, std::to_string(value));
}

// 40 tokens: longer than the tiny Mistral's sliding window (16), so the window is exercised.
constexpr int kTokens = 40;

TEST_P(GpuModel, Float32OnCudaEqualsTheCpu) {
  SENSECF_REQUIRE_CUDA();
  const auto cpu = load("cpu", "float32");
  const auto ids = some_ids(kTokens, static_cast<int>(cpu->config().vocab_size), 1);
  const auto want = cpu->logits(ids);
  for (const char* attention : {"eager", "sdpa"}) {
    const auto got = load("cuda:0", "float32", attention)->logits(ids);
    const double d = max_abs_diff(want, got);
    report(GetParam() + " fp32 cuda(" + attention + ") vs cpu max abs diff", d);
    EXPECT_LE(d, 1e-4) << attention;  // TF32 is off for fp32 matmuls by default; this is plain fp32 rounding
  }
}

// bf16 keeps 8 mantissa bits (relative precision 2^-8 = 0.4%), fp16 11 (0.05%).
// Over two layers and a softmax the errors add up to a few units of that on the
// largest logit; the bounds below are 10x what the CPU's bf16 test measured
// (0.8% of the largest logit), scaled by the formats' precision for fp16.
TEST_P(GpuModel, HalfPrecisionTracksFloat32OnCuda) {
  SENSECF_REQUIRE_CUDA();
  const auto fp32 = load("cuda:0", "float32");
  const auto ids = some_ids(kTokens, static_cast<int>(fp32->config().vocab_size), 2);
  const auto want = fp32->logits(ids);
  const double scale = max_abs(want);
  ASSERT_GT(scale, 0.0);
  for (const auto& [dtype, bound] : std::vector<std::pair<std::string, double>>{{"bfloat16", 0.08}, {"float16", 0.01}}) {
    for (const char* attention : {"eager", "sdpa"}) {
      const auto got = load("cuda:0", dtype, attention)->logits(ids);
      const double rel = max_abs_diff(want, got) / scale;
      report(GetParam() + " " + dtype + " (" + attention + ") vs fp32, max abs diff / max |logit|", rel);
      EXPECT_LE(rel, bound) << dtype << " " << attention;
    }
  }
}

TEST_P(GpuModel, EagerAndSdpaAttentionAgreeOnCuda) {
  SENSECF_REQUIRE_CUDA();
  for (const char* dtype : {"float32", "bfloat16"}) {
    const auto eager = load("cuda:0", dtype, "eager");
    const auto ids = some_ids(kTokens, static_cast<int>(eager->config().vocab_size), 3);
    const auto a = eager->logits(ids);
    const auto b = load("cuda:0", dtype, "sdpa")->logits(ids);
    const double rel = max_abs_diff(a, b) / max_abs(a);
    report(GetParam() + " " + dtype + " eager vs sdpa, max abs diff / max |logit|", rel);
    // fp32: two summation orders of the same softmax; bf16: the eager path's
    // softmax is fp32, the fused kernel's accumulation differs within bf16 rounding.
    EXPECT_LE(rel, std::string(dtype) == "float32" ? 1e-5 : 0.08) << dtype;
  }
}

TEST_P(GpuModel, LeftPaddedBatchGeneratesWhatEachPromptGeneratesAloneOnCuda) {
  SENSECF_REQUIRE_CUDA();
  for (const char* attention : {"eager", "sdpa"}) {
    SCOPED_TRACE(attention);
    const auto model = load("cuda:0", "float32", attention);
    const int vocab = static_cast<int>(model->config().vocab_size);
    const std::vector<std::vector<int>> prompts = {some_ids(3, vocab, 2), some_ids(19, vocab, 3),
                                                   some_ids(7, vocab, 4)};
    GenerationOptions o;
    o.max_new_tokens = 24;
    const auto batch = generate(*model, prompts, o, /*pad_id=*/0);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(batch[i], generate(*model, {prompts[i]}, o, 0)[0]) << "prompt " << i;
      EXPECT_EQ(batch[i].size(), 24u);
    }
    // and the GPU generates what the CPU generates
    EXPECT_EQ(batch, generate(*load("cpu", "float32"), prompts, o, 0));
  }
}

TEST_P(GpuModel, AdapterAppliedOnCudaGivesTheCpuLogits) {
  SENSECF_REQUIRE_CUDA();
  const auto config = load_config(model_dir());
  const auto lora = LoraConfig::from_json(nlohmann::json{{"peft_type", "LORA"},
                                                         {"r", 8},
                                                         {"lora_alpha", 16},
                                                         {"target_modules", "all-linear"},
                                                         {"base_model_name_or_path", "tiny"}}
                                              .dump(),
                                          "test adapter");
  const std::string adapter = dir_->file(GetParam() + "-adapter");
  save_lora_adapter(adapter, init_lora_adapter(lora, config, LoraInit::kRandom, 5));
  const auto ids = some_ids(kTokens, static_cast<int>(config.vocab_size), 4);
  const auto base = load("cpu", "float32")->logits(ids);
  const auto want = load("cpu", "float32", "eager", adapter)->logits(ids);
  ASSERT_GT(max_abs_diff(base, want), 1e-2) << "the adapter must change the logits for this test to mean anything";
  for (bool merge : {false, true}) {
    const auto got = load("cuda:0", "float32", "eager", adapter, merge)->logits(ids);
    const double d = max_abs_diff(want, got);
    report(GetParam() + (merge ? " merged" : " unmerged") + " adapter fp32 cuda vs cpu max abs diff", d);
    EXPECT_LE(d, 1e-4) << (merge ? "merged" : "unmerged");
  }
  const auto half = load("cuda:0", "bfloat16", "sdpa", adapter)->logits(ids);
  const double rel = max_abs_diff(want, half) / max_abs(want);
  report(GetParam() + " adapter bf16 sdpa cuda vs fp32 cpu, max abs diff / max |logit|", rel);
  EXPECT_LE(rel, 0.08);
}

INSTANTIATE_TEST_SUITE_P(Families, GpuModel, ::testing::Values("llama", "mistral"));

}  // namespace
}  // namespace sensecf::llm
