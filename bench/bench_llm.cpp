// Tiny Llama / Mistral on the CPU: prefill and decode tokens/s of the LibTorch
// model (random tiny checkpoints from `lm init-tiny`; the real 8B shapes need
// a GPU, see docs/llm.md), without and with a LoRA adapter (r=8 on all seven
// projections, applied unmerged as PEFT computes it, or merged into the weights).
// Also generate's sampler alone at the Llama 3 vocabulary (V = 128256), and
// decoding constrained by an allowed_tokens hook.
//   build/cpu-release/bin/bench_llm [--benchmark_filter=Sampler]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "sensecf/core/random.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/model/tiny.h"

namespace {

// `adapter`: "" (none), "lora" (unmerged) or "lora-merged".
const sensecf::llm::CausalLM& model(const std::string& family, const std::string& adapter = "") {
  namespace llm = sensecf::llm;
  static std::map<std::string, std::unique_ptr<llm::CausalLM>> models;
  auto& m = models[family + "/" + adapter];
  if (!m) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("sensecf_bench_tiny_" + family + "_" + std::to_string(::getpid()));
    llm::write_tiny_checkpoint(dir.string(), family, 1);
    llm::ModelOptions options;
    if (!adapter.empty()) {
      llm::LoraConfig config;
      config.targets = llm::LoraConfig::Targets::kAllLinear;
      config.r = 8;
      config.lora_alpha = 16;
      llm::save_lora_adapter((dir / "lora").string(),
                             llm::init_lora_adapter(config, llm::load_config(dir.string()), llm::LoraInit::kRandom, 1));
      options.adapter = (dir / "lora").string();
      options.merge_adapter = adapter == "lora-merged";
    }
    m = llm::CausalLM::load(dir.string(), options);
    std::filesystem::remove_all(dir);
  }
  return *m;
}

std::vector<int> prompt(int n, int vocab) {
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) ids.push_back((i * 31 + 7) % vocab);
  return ids;
}

// One forward pass over T tokens (the prompt of a CF request is ~300 tokens).
void BM_Prefill(benchmark::State& state, const std::string& family, const std::string& adapter = "") {
  const auto& m = model(family, adapter);
  const auto ids = prompt(static_cast<int>(state.range(0)), static_cast<int>(m.config().vocab_size));
  for (auto _ : state) benchmark::DoNotOptimize(m.logits(ids));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(ids.size() * state.iterations()), benchmark::Counter::kIsRate);
}

// Greedy decoding of 64 new tokens for a batch of B prompts of 32 tokens.
void BM_Decode(benchmark::State& state, const std::string& family, const std::string& adapter = "") {
  const auto& m = model(family, adapter);
  const int batch = static_cast<int>(state.range(0));
  std::vector<std::vector<int>> prompts(static_cast<std::size_t>(batch),
                                        prompt(32, static_cast<int>(m.config().vocab_size)));
  sensecf::llm::GenerationOptions o;
  o.max_new_tokens = 64;
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto out = sensecf::llm::generate(m, prompts, o, 0);
    for (const auto& s : out) tokens += s.size();
  }
  state.counters["new tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

// Greedy decoding as BM_Decode, each step restricted by an allowed_tokens hook
// to state.range(1) ids: the hook's own time is reported as "mask ms/step".
void BM_DecodeConstrained(benchmark::State& state) {
  const auto& m = model("llama");
  const int vocab = static_cast<int>(m.config().vocab_size);
  std::vector<std::vector<int>> prompts(static_cast<std::size_t>(state.range(0)), prompt(32, vocab));
  sensecf::llm::GenerationOptions o;
  o.max_new_tokens = 64;
  const int n_allowed = static_cast<int>(state.range(1));
  o.allowed_tokens = [&](std::size_t, std::vector<int>& ids) {
    for (int i = 0; i < n_allowed; ++i) ids.push_back((i * 7) % vocab);
  };
  sensecf::llm::GenerationStats stats;
  o.stats = &stats;
  std::size_t tokens = 0;
  double mask_s = 0;
  long steps = 0;
  for (auto _ : state) {
    const auto out = sensecf::llm::generate(m, prompts, o, 0);
    for (const auto& s : out) tokens += s.size();
    mask_s += stats.mask_seconds;
    steps += stats.masked_steps;
  }
  state.counters["new tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.counters["mask ms/step"] = steps > 0 ? 1e3 * mask_s / static_cast<double>(steps) : 0.0;
}

// generate's sampler (pick_tokens) on 8 rows of V = 128256 logits, the Llama 3
// vocabulary, on the CPU; "ms/row" is the cost per sequence and step.
// state.range(0): 0 peaked logits (16 tokens hold > 99% of the mass, as an
// instruction-tuned model's usually do), 1 flat (standard normal: top-p 0.9
// keeps most of the vocabulary, so whole rows must be sorted: the worst case).
// state.range(1): 0 temperature 0.8 + top-p 0.9, 1 + top-k 50, 2 temperature
// 0.8 alone. The sampler before this one sorted each row on the host in
// float64 (36.8 ms/row peaked or flat at top-p 0.9, 15.1 with top-k 50, 1.7
// with temperature alone, on the 2-core development machine).
void BM_Sampler(benchmark::State& state) {
  constexpr std::size_t kRows = 8, kVocab = 128256;
  sensecf::Rng rng(1);
  std::vector<float> logits;
  for (std::size_t r = 0; r < kRows; ++r) {
    for (std::size_t v = 0; v < kVocab; ++v) logits.push_back(static_cast<float>(2.0 * rng.normal()));
    if (state.range(0) == 0)
      for (std::size_t i = 0; i < 16; ++i) logits[r * kVocab + rng.below(kVocab)] += 16.0f;
  }
  sensecf::llm::GenerationOptions o;
  o.temperature = 0.8;
  o.top_p = state.range(1) == 2 ? 1.0 : 0.9;
  o.top_k = state.range(1) == 1 ? 50 : 0;
  std::vector<double> u(kRows);
  double seconds = 0;
  for (auto _ : state) {
    for (auto& x : u) x = rng.uniform();
    const auto began = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(sensecf::llm::pick_tokens(logits, kRows, o, u));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  }
  state.counters["ms/row"] = 1e3 * seconds / static_cast<double>(state.iterations() * kRows);
}

BENCHMARK_CAPTURE(BM_Prefill, llama, std::string("llama"))->Arg(32)->Arg(300)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Prefill, mistral, std::string("mistral"))->Arg(300)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, llama, std::string("llama"))->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, mistral, std::string("mistral"))->Arg(1)->Unit(benchmark::kMillisecond);
// The same tiny Llama with a LoRA adapter: the cost of the unmerged branch, and merged (which should match no adapter).
BENCHMARK_CAPTURE(BM_Prefill, llama_lora, std::string("llama"), std::string("lora"))
    ->Arg(32)->Arg(300)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Prefill, llama_lora_merged, std::string("llama"), std::string("lora-merged"))
    ->Arg(32)->Arg(300)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, llama_lora, std::string("llama"), std::string("lora"))
    ->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, llama_lora_merged, std::string("llama"), std::string("lora-merged"))
    ->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeConstrained)->Args({8, 16})->Args({8, 1024})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sampler)
    ->ArgNames({"flat", "case"})
    ->Args({0, 0})->Args({0, 1})->Args({0, 2})->Args({1, 0})->Args({1, 1})->Args({1, 2})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
