// Loading a checkpoint from pytorch_model.bin vs from model.safetensors: the
// same ~1 GB of BF16 weights (16 tensors, as a 7B model's shards hold them)
// written once in each format, then read with load_weights (parse, mmap, one
// copy into owned BF16 tensors; GB/s of checkpoint bytes) and with map_weights
// (parse and mmap only; the time per call). The files stay in the page cache after the first
// iteration, so the figures are the warm-cache ones (the disk is the limit
// when cold).
//   build/cpu-release/bin/bench_torch_bin [--benchmark_out=...]
//   SENSECF_BENCH_CHECKPOINT_MB=4096 build/cpu-release/bin/bench_torch_bin   (another size)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "sensecf/llm/io/safetensors.h"
#include "sensecf/llm/io/torch_bin.h"
#include "sensecf/llm/io/weights.h"

namespace {

namespace fs = std::filesystem;

constexpr int kTensors = 16;

struct Fixture {
  fs::path dir;
  std::string bin_dir, safetensors_dir;
  std::uint64_t n_bytes = 0;

  Fixture() {
    const char* mb = std::getenv("SENSECF_BENCH_CHECKPOINT_MB");
    const std::uint64_t total = (mb ? std::strtoull(mb, nullptr, 10) : 1024) << 20;
    dir = fs::temp_directory_path() / ("sensecf_bench_torch_bin_" + std::to_string(::getpid()));
    bin_dir = (dir / "bin").string();
    safetensors_dir = (dir / "safetensors").string();
    fs::create_directories(bin_dir);
    fs::create_directories(safetensors_dir);
    // BF16 [rows, 4096] matrices with a deterministic, non-constant pattern.
    const std::int64_t cols = 4096;
    const std::int64_t rows = static_cast<std::int64_t>(total / kTensors / 2 / cols);
    std::vector<std::uint16_t> values(static_cast<std::size_t>(rows * cols));
    for (std::size_t i = 0; i < values.size(); ++i)
      values[i] = static_cast<std::uint16_t>(0x3c00 + (i * 7919) % 0x0400);
    std::map<std::string, sensecf::llm::TensorData> tensors;
    for (int k = 0; k < kTensors; ++k) {
      tensors["model.layers." + std::to_string(k) + ".mlp.up_proj.weight"] = {
          sensecf::llm::Dtype::kBF16, {rows, cols}, values.data(), values.size() * 2};
      n_bytes += values.size() * 2;
    }
    sensecf::llm::write_torch_bin(bin_dir + "/pytorch_model.bin", tensors);
    sensecf::llm::write_safetensors(safetensors_dir + "/model.safetensors", tensors, {{"format", "pt"}});
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const Fixture& fixture() {
  static Fixture f;
  return f;
}

void report(benchmark::State& state, std::uint64_t n_bytes) {
  state.SetBytesProcessed(static_cast<std::int64_t>(n_bytes * state.iterations()));
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(n_bytes) * static_cast<double>(state.iterations()) / 1e9,
                         benchmark::Counter::kIsRate);
}

void BM_LoadWeights(benchmark::State& state, bool bin) {
  const auto& f = fixture();
  const std::string& dir = bin ? f.bin_dir : f.safetensors_dir;
  for (auto _ : state) {
    auto w = sensecf::llm::load_weights(dir, c10::ScalarType::BFloat16);
    benchmark::DoNotOptimize(w);
  }
  report(state, f.n_bytes);
}

void BM_MapWeights(benchmark::State& state, bool bin) {
  const auto& f = fixture();
  const std::string& dir = bin ? f.bin_dir : f.safetensors_dir;
  for (auto _ : state) {
    auto w = sensecf::llm::map_weights(dir);
    benchmark::DoNotOptimize(w);
  }
  state.counters["tensors"] = kTensors;  // no bytes are touched: the time is parsing and mapping
}

BENCHMARK_CAPTURE(BM_LoadWeights, pytorch_model_bin, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LoadWeights, safetensors, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MapWeights, pytorch_model_bin, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MapWeights, safetensors, false)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
