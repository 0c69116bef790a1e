// Tiny Llama / Mistral on the CPU: prefill and decode tokens/s of the LibTorch
// model (random tiny checkpoints from `lm init-tiny`; the real 8B shapes need
// a GPU, see docs/llm.md).
//   build/cpu-release/bin/bench_llm
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "sensecf/llm/model.h"
#include "sensecf/llm/tiny.h"

namespace {

const sensecf::llm::CausalLM& model(const std::string& family) {
  static std::map<std::string, std::unique_ptr<sensecf::llm::CausalLM>> models;
  auto& m = models[family];
  if (!m) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("sensecf_bench_tiny_" + family + "_" + std::to_string(::getpid()));
    sensecf::llm::write_tiny_checkpoint(dir.string(), family, 1);
    m = sensecf::llm::CausalLM::load(dir.string());
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
void BM_Prefill(benchmark::State& state, const std::string& family) {
  const auto& m = model(family);
  const auto ids = prompt(static_cast<int>(state.range(0)), static_cast<int>(m.config().vocab_size));
  for (auto _ : state) benchmark::DoNotOptimize(m.logits(ids));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(ids.size() * state.iterations()), benchmark::Counter::kIsRate);
}

// Greedy decoding of 64 new tokens for a batch of B prompts of 32 tokens.
void BM_Decode(benchmark::State& state, const std::string& family) {
  const auto& m = model(family);
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

}  // namespace

BENCHMARK_MAIN();
