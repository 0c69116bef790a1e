// Encoding speed of llm::Tokenizer on the real Llama-3.1 (and Llama-2)
// tokenizer.json, over tests/golden/tokenizer/corpus.jsonl repeated to ~1 MB.
// Issue 5's target: >= 20 MB/s on one core for Llama-3.1.
//   SENSECF_LLAMA3_TOKENIZER=.../tokenizer.json [SENSECF_LLAMA2_TOKENIZER=...] bench_tokenizer
// (run_tokenizer_golden.sh's package cache has both files; the benchmark of a
// tokenizer whose variable is unset is skipped). Counters: MB/s of UTF-8 input
// ("bytes_per_second") and tokens/s. "cold" clears the word cache every
// iteration, "warm" keeps it (the steady state of a long run).
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "sensecf/llm/text/tokenizer.h"

#ifndef SENSECF_SOURCE_DIR
#define SENSECF_SOURCE_DIR "."
#endif

namespace {

std::vector<std::string> corpus_1mb() {
  std::vector<std::string> lines;
  const char* dir = std::getenv("SENSECF_SOURCE_DIR");
  std::ifstream in(std::string(dir ? dir : SENSECF_SOURCE_DIR) + "/tests/golden/tokenizer/corpus.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line).get<std::string>());
  }
  std::vector<std::string> text;
  std::size_t bytes = 0;
  while (!lines.empty() && bytes < (1u << 20)) {
    for (const auto& l : lines) {
      text.push_back(l);
      bytes += l.size();
    }
  }
  return text;
}

void bench_encode(benchmark::State& state, const char* env, bool cold) {
  const char* path = std::getenv(env);
  if (!path) {
    state.SkipWithError((std::string(env) + " is not set (path of a tokenizer.json); skipped").c_str());
    return;
  }
  static const std::vector<std::string> text = corpus_1mb();
  if (text.empty()) {
    state.SkipWithError("corpus not found; set SENSECF_SOURCE_DIR to the repository root");
    return;
  }
  const sensecf::llm::Tokenizer tokenizer = sensecf::llm::Tokenizer::load(path);
  std::size_t bytes = 0, tokens = 0;
  for (auto _ : state) {
    if (cold) tokenizer.clear_cache();
    for (const auto& line : text) {
      const std::vector<int> ids = tokenizer.encode(line);
      tokens += ids.size();
      bytes += line.size();
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["tokens_per_second"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void BM_EncodeLlama3Warm(benchmark::State& s) { bench_encode(s, "SENSECF_LLAMA3_TOKENIZER", false); }
void BM_EncodeLlama3Cold(benchmark::State& s) { bench_encode(s, "SENSECF_LLAMA3_TOKENIZER", true); }
void BM_EncodeLlama2(benchmark::State& s) { bench_encode(s, "SENSECF_LLAMA2_TOKENIZER", false); }

}  // namespace

BENCHMARK(BM_EncodeLlama3Warm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeLlama3Cold)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeLlama2)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
