// Tiny Llama / Mistral on the CPU: prefill and decode tokens/s of the LibTorch
// model (random tiny checkpoints from `lm init-tiny`; the real 8B shapes need
// a GPU, see docs/llm.md), without and with a LoRA adapter (r=8 on all seven
// projections, applied unmerged as PEFT computes it, or merged into the weights).
//   build/cpu-release/bin/bench_llm
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

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

}  // namespace

BENCHMARK_MAIN();
