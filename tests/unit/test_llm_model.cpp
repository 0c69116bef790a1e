// The Llama/Mistral model on random tiny checkpoints: the KV-cache path equals
// the full forward pass, a left-padded batch generates what each prompt
// generates alone, sampling is reproducible per seed, and checkpoint errors
// are clear. (Logits vs an independent implementation:
// tests/python/test_llm_reference.py; vs transformers: tests/golden/llm/.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sensecf/core/error.h"
#include <torch/version.h>

#include "sensecf/llm/model/model.h"
#include "sensecf/llm/model/tiny.h"
#include "llm_util.h"

namespace sensecf::llm {
namespace {

using test::some_ids;

class TinyModel : public ::testing::TestWithParam<std::string> {
 protected:
  std::string model_dir() { return test::tiny_checkpoint(GetParam()); }
};

TEST_P(TinyModel, KvCacheMatchesTheFullForwardPass) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  const auto ids = some_ids(40, vocab, 1);  // longer than Mistral's tiny sliding window (16)
  const auto full = model->logits(ids);
  const auto step = model->logits_incremental(ids);
  ASSERT_EQ(full.size(), ids.size() * static_cast<std::size_t>(vocab));
  ASSERT_EQ(full.size(), step.size());
  double max_diff = 0;
  for (std::size_t i = 0; i < full.size(); ++i) max_diff = std::max(max_diff, std::abs(double(full[i]) - step[i]));
  EXPECT_LT(max_diff, 1e-4);
}

TEST_P(TinyModel, LeftPaddedBatchGeneratesWhatEachPromptGeneratesAlone) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  const std::vector<std::vector<int>> prompts = {some_ids(3, vocab, 2), some_ids(11, vocab, 3), some_ids(7, vocab, 4)};
  GenerationOptions o;
  o.max_new_tokens = 12;
  const auto batch = generate(*model, prompts, o, /*pad_id=*/0);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto alone = generate(*model, {prompts[i]}, o, 0);
    EXPECT_EQ(batch[i], alone[0]) << "prompt " << i;
    EXPECT_EQ(batch[i].size(), 12u);
  }
}

TEST_P(TinyModel, SamplingIsReproducibleAndSeedsDiffer) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  GenerationOptions o;
  o.max_new_tokens = 16;
  o.temperature = 1.5;
  o.top_k = 50;
  o.top_p = 0.95;
  o.seed = 1;
  const auto a = generate(*model, {some_ids(5, vocab, 5)}, o, 0);
  const auto b = generate(*model, {some_ids(5, vocab, 5)}, o, 0);
  o.seed = 2;
  const auto c = generate(*model, {some_ids(5, vocab, 5)}, o, 0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_P(TinyModel, StopTokenEndsASequence) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  GenerationOptions o;
  o.max_new_tokens = 10;
  const auto free_run = generate(*model, {some_ids(4, vocab, 6)}, o, 0)[0];
  o.stop_ids = {free_run[2]};
  const auto stopped = generate(*model, {some_ids(4, vocab, 6)}, o, 0)[0];
  // ends at the first occurrence of the stop token, which is kept
  const auto first = std::find(free_run.begin(), free_run.end(), free_run[2]) - free_run.begin();
  EXPECT_EQ(stopped, std::vector<int>(free_run.begin(), free_run.begin() + first + 1));
}

// bfloat16 on the CPU runs the same graph in half the bits: RMSNorm and the
// softmax stay fp32, so the logits track fp32's to bf16 rounding (the tiny
// models' logits are O(0.5); measured differences ~5e-3).
TEST_P(TinyModel, Bfloat16TracksFloat32) {
  ModelOptions bf16;
  bf16.dtype = "bfloat16";
  const auto full = CausalLM::load(model_dir());
  const auto half = CausalLM::load(model_dir(), bf16);
  const int vocab = static_cast<int>(full->config().vocab_size);
  const auto ids = some_ids(30, vocab, 5);
  const auto a = full->logits(ids), b = half->logits(ids);
  ASSERT_EQ(a.size(), b.size());
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(a[i]) - b[i]));
    max_abs = std::max(max_abs, std::abs(double(a[i])));
  }
  EXPECT_GT(max_diff, 0.0) << "bfloat16 gave fp32's logits exactly: was the dtype ignored?";
  EXPECT_LT(max_diff, 0.05 * max_abs) << "max |fp32 - bf16| " << max_diff << ", max |logit| " << max_abs;
  // Greedy continuations of a batch agree with the cache path in bf16 too.
  GenerationOptions o;
  o.max_new_tokens = 6;
  const std::vector<std::vector<int>> prompts = {some_ids(4, vocab, 6), some_ids(9, vocab, 7)};
  const auto batch = generate(*half, prompts, o, 0);
  EXPECT_EQ(batch[0], generate(*half, {prompts[0]}, o, 0)[0]);
  EXPECT_EQ(batch[1], generate(*half, {prompts[1]}, o, 0)[0]);
}

// eager and sdpa attention compute the same logits; on LibTorch 1.13 sdpa is
// refused by name (it needs 2.0).
TEST_P(TinyModel, AttentionImplementationsAgree) {
  ModelOptions eager, sdpa;
  eager.attention = "eager";
  sdpa.attention = "sdpa";
  const auto reference = CausalLM::load(model_dir(), eager);
  const auto ids = some_ids(40, static_cast<int>(reference->config().vocab_size), 8);
  const auto a = reference->logits(ids);
#if TORCH_VERSION_MAJOR >= 2
  const auto b = CausalLM::load(model_dir(), sdpa)->logits(ids);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << "logit " << i;
#else
  EXPECT_THROW_WITH(CausalLM::load(model_dir(), sdpa), UsageError, "attention 'sdpa' needs LibTorch >= 2.0");
  ModelOptions automatic;
  EXPECT_EQ(CausalLM::load(model_dir(), automatic)->logits(ids), a);  // auto = eager here
  ModelOptions fp16;
  fp16.dtype = "float16";
  EXPECT_THROW_WITH(CausalLM::load(model_dir(), fp16), UsageError, "float16 on the CPU");
#endif
}

INSTANTIATE_TEST_SUITE_P(Families, TinyModel, ::testing::Values("llama", "mistral"));

// Random weights at a given config (what `lm bench` uses for 8B shapes): the
// same seed gives the same model, another seed another one.
TEST(CausalLMRandom, SeededAndShapedByTheConfig) {
  const auto config = ModelConfig::tiny(Family::kMistral, 97);
  const auto a = CausalLM::random(config, {}, 5), b = CausalLM::random(config, {}, 5), c = CausalLM::random(config, {}, 6);
  EXPECT_EQ(a->config().to_json(), config.to_json());
  const std::vector<int> ids = {1, 5, 9, 33, 96};
  const auto la = a->logits(ids);
  EXPECT_EQ(la.size(), ids.size() * 97);
  EXPECT_EQ(la, b->logits(ids));
  EXPECT_NE(la, c->logits(ids));
  ModelOptions with_adapter;
  with_adapter.adapter = "some/dir";
  EXPECT_THROW_WITH(CausalLM::random(config, with_adapter, 1), UsageError, "takes no adapter");
}

// `lm bench` end to end on a tiny shape: one JSON line per batch size whose
// bytes per decode step follow from the config (weights but the embedding
// table, plus the K/V cache at the mean decode length).
TEST(LmBench, ReportsEveryBatchWithRooflineBytes) {
  test::TempDir dir;
  const auto json = dir.file("bench.jsonl");
  const auto r = test::run_command(test::sensecf_bin() +
                                   " lm bench --shape tiny-mistral --batch 1,3 --prompt-len 12 --new-tokens 5 "
                                   "--repeat 1 --peak-gbs 100 --log.level warn --out " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(json);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u) << r.output;
  const auto config = ModelConfig::tiny(Family::kMistral, 512);
  double weights = 0;
  for (const auto& [name, shape] : expected_tensor_shapes(config)) {
    if (name == "model.embed_tokens.weight") continue;
    double n = 1;
    for (auto d : shape) n *= static_cast<double>(d);
    weights += n;
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double batch = i == 0 ? 1 : 3;
    EXPECT_EQ(rows[i]["batch"], static_cast<int>(batch));
    const double kv = 2.0 * 2 * 2 * 16 * (12 + 5 / 2.0) * batch;  // 2 (k, v) x layers x kv heads x head dim x tokens
    EXPECT_DOUBLE_EQ(rows[i]["decode_bytes_per_step"].get<double>(), (weights + kv) * 4);
    EXPECT_GT(rows[i]["prefill_tokens_per_s"].get<double>(), 0);
    EXPECT_GT(rows[i]["decode_tokens_per_s"].get<double>(), 0);
    EXPECT_NEAR(rows[i]["roofline_fraction"].get<double>(), rows[i]["decode_gb_per_s"].get<double>() / 100, 1e-12);
  }
  // --json: the same lines on stdout, no table (as --json does for every command).
  const auto printed = test::run_command(test::sensecf_bin() +
                                         " lm bench --shape tiny-mistral --batch 2 --prompt-len 8 --new-tokens 4 "
                                         "--repeat 1 --log.level warn --json");
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_EQ(printed.output.find("prefill tok/s"), std::string::npos) << printed.output;
  EXPECT_EQ(nlohmann::json::parse(printed.output.substr(0, printed.output.find('\n')))["batch"], 2);
  const auto bad = test::run_command(test::sensecf_bin() + " lm bench --shape llama-3.1-70b");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("unknown model preset 'llama-3.1-70b'"), std::string::npos) << bad.output;
}

// ModelOptions::cuda_graph on the CPU: auto and off decode eagerly (and say
// why in the stats), on is refused by name; tests/gpu covers the graph itself.
TEST(CausalLMCudaGraph, CpuDecodesEagerlyAndRefusesOn) {
  test::TempDir dir;
  write_tiny_checkpoint(dir.file("m"), "llama", 1);
  ModelOptions o;
  GenerationOptions g;
  g.max_new_tokens = 5;
  GenerationStats stats;
  g.stats = &stats;
  const auto model = CausalLM::load(dir.file("m"), o);
  const auto prompt = some_ids(4, static_cast<int>(model->config().vocab_size), 1);
  const auto reference = generate(*model, {prompt}, g, 0);
  EXPECT_EQ(stats.decode_path, "eager");
  EXPECT_EQ(stats.eager_reason, "device cpu");
  EXPECT_EQ(stats.decode_steps, 4);
  EXPECT_EQ(stats.graph_setup_s, 0.0);
  o.cuda_graph = "off";
  EXPECT_EQ(generate(*CausalLM::load(dir.file("m"), o), {prompt}, g, 0), reference);
  EXPECT_EQ(stats.eager_reason, "cuda_graph off");
  o.cuda_graph = "on";
  EXPECT_THROW_WITH(CausalLM::load(dir.file("m"), o), UsageError, "cuda_graph 'on' needs a CUDA device");
  EXPECT_THROW_WITH(CausalLM::random(ModelConfig::tiny(Family::kLlama, 97), o, 1), UsageError,
                    "needs a CUDA device");
  o.cuda_graph = "sometimes";
  EXPECT_THROW_WITH(CausalLM::load(dir.file("m"), o), UsageError, "unknown cuda_graph mode 'sometimes'");
}

TEST(CausalLMLoad, MissingTensorIsNamed) {
  test::TempDir dir;
  write_tiny_checkpoint(dir.file("m"), "llama", 1);
  // A config that claims one more layer than the weights hold.
  std::ifstream in(dir.file("m/config.json"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto pos = text.find("\"num_hidden_layers\": 2");
  ASSERT_NE(pos, std::string::npos) << text;
  text.replace(pos, 22, "\"num_hidden_layers\": 3");
  std::ofstream(dir.file("m/config.json")) << text;
  EXPECT_THROW_WITH(CausalLM::load(dir.file("m")), Error, "model.layers.2.");
}

}  // namespace
}  // namespace sensecf::llm
