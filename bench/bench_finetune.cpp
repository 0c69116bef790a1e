// LoRA / QLoRA fine-tuning on the CPU: training tokens/s of `lm finetune`'s
// trainer on the tiny random Llama, with and without length-grouped batches
// (examples of about 15 to 200 tokens, so padding matters), with NF4 base weights, and
// this machine's measured fp32 GEMM rate for scale. Tokens are real tokens
// (prompt + completion), never padding. The GPU comparison with transformers +
// PEFT at 8B shapes is scripts/device/ (it needs a GPU).
//   build/cpu-release/bin/bench_finetune
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "sensecf/core/random.h"
#include "sensecf/llm/model/tiny.h"
#include "sensecf/llm/train/trainer.h"

namespace {
namespace fs = std::filesystem;

const fs::path& work_dir() {
  static const fs::path dir = [] {
    const auto d = fs::temp_directory_path() / ("sensecf_bench_finetune_" + std::to_string(::getpid()));
    fs::create_directories(d);
    sensecf::llm::write_tiny_checkpoint((d / "llama").string(), "llama", 1);
    // 96 examples: prompts of 1 to 20 number phrases (about 15 to 200 tokens), short completions.
    sensecf::Rng rng(3);
    std::ofstream out(d / "train.jsonl");
    for (int i = 0; i < 96; ++i) {
      std::string prompt;
      const auto words = 1 + rng.below(20);
      for (std::uint64_t w = 0; w < words; ++w) prompt += " steps " + std::to_string(rng.below(10000));
      out << "{\"prompt\": \"" << prompt << ". change:\", \"completion\": \" steps " << rng.below(10000) << "\"}\n";
    }
    return d;
  }();
  return dir;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    fs::remove_all(work_dir(), ec);
  }
} cleanup;

// 8 optimiser steps of batch 4 x 2 (the paper's shape, smaller accumulation).
void BM_FinetuneSteps(benchmark::State& state, bool group_by_length, const std::string& quant) {
  torch::set_num_threads(1);
  sensecf::llm::FinetuneOptions o;
  o.model_dir = (work_dir() / "llama").string();
  o.data_path = (work_dir() / "train.jsonl").string();
  o.out_dir = (work_dir() / "out").string();
  o.batch_size = 4;
  o.grad_accum = 2;
  o.max_steps = 8;
  o.eval_fraction = 0;
  o.save_every = 0;
  o.log_every = 0;
  o.resume = false;
  o.group_by_length = group_by_length;
  o.model.quant = quant;
  double tokens = 0, seconds = 0;
  for (auto _ : state) {
    const auto r = sensecf::llm::finetune(o);
    tokens += static_cast<double>(r.curve.back().tokens);
    seconds += r.curve.back().seconds;
  }
  state.counters["tokens/s"] = tokens / seconds;
}

// fp32 GEMM on one thread, n x n x n: the machine's rate for comparison.
void BM_GemmFp32(benchmark::State& state) {
  torch::set_num_threads(1);
  const auto n = state.range(0);
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(torch::matmul(a, b));
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n * n * n) *
                                                     static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_FinetuneSteps, lora_grouped, true, "none")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_FinetuneSteps, lora_shuffled, false, "none")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_FinetuneSteps, qlora_nf4_grouped, true, "nf4")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemmFp32)->Arg(512)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
