// `sensecf lm bench`: prefill and decode speed of the LibTorch Llama/Mistral at
// real shapes (the paper's 8B/7B configs, random weights made on the device) or
// at tiny ones, with the fraction of the memory-bandwidth roofline that batch-1
// decoding reaches. The numbers the GPU parity issue asks for come from here:
//
//   sensecf lm bench --shape llama-3.1-8b --device cuda:0 --batch 1,32 --peak-gbs 3350
//
// Decode at batch 1 is bound by reading every weight once per step (plus the
// KV cache), so roofline step time = bytes read / peak bandwidth; the fraction
// reported is roofline time / measured step time. Both times are measured in
// one generate call per repetition, from the moment each token reaches the host.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/llm/model/device_memory.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/model/tiny.h"

namespace sensecf::cli {

llm::ModelConfig lm_bench_config(const std::string& shape, long layers) {
  llm::ModelConfig config;
  if (shape == "tiny-llama" || shape == "tiny-mistral") {
    config = llm::ModelConfig::tiny(shape == "tiny-llama" ? llm::Family::kLlama : llm::Family::kMistral, 512);
  } else if (shape.find('/') != std::string::npos || shape.find(".json") != std::string::npos) {
    config = llm::load_config(shape);
  } else {
    config = llm::ModelConfig::preset(shape);
  }
  if (layers > 0) config.num_hidden_layers = layers;  // fewer layers: the same per-layer shapes on a CPU
  config.validate("--shape " + shape);
  return config;
}

void declare_bench_shape_options(Options& options, std::string& shape, long& layers) {
  options.add("bench.shape", &shape,
              "llama-3.1-8b, biomistral-7b, tiny-llama, tiny-mistral, or a config.json path", "shape");
  options.add("bench.layers", &layers, "override num_hidden_layers (0: the config's), e.g. 2 on a CPU", "layers");
}

namespace {

// Bytes one decode step must read: every weight except the embedding table
// (only B rows of it are gathered) and, per layer, the K and V cache of S tokens.
double decode_step_bytes(const llm::ModelConfig& c, double element, long batch, double cached_tokens) {
  double weights = 0;
  for (const auto& [name, shape] : llm::expected_tensor_shapes(c)) {
    if (name == "model.embed_tokens.weight" && !c.tie_word_embeddings) continue;
    double n = 1;
    for (auto d : shape) n *= static_cast<double>(d);
    weights += n;
  }
  const double kv = 2.0 * static_cast<double>(c.num_hidden_layers * c.num_key_value_heads * c.head_dim) *
                    cached_tokens * static_cast<double>(batch);
  return (weights + kv) * element;
}

int lm_bench(const std::vector<std::string>& args) {
  LogOptions log;
  std::string shape = "tiny-llama", json_out;
  bool json = false;
  llm::ModelOptions model_options;
  std::vector<std::string> batches = {"1"};
  long layers = 0, prompt_len = 128, new_tokens = 64, repeat = 3;
  double peak_gbs = 0;
  unsigned long seed = 1;
  Options options("lm bench",
                  "Prefill and decode tokens/s of the Llama/Mistral decoder with random weights at a model's real\n"
                  "shapes (made directly on the device), and batch-1 decode against the memory-bandwidth roofline.");
  declare_bench_shape_options(options, shape, layers);
  options.add("bench.batch", &batches, "batch sizes to measure", "batch");
  options.add("bench.prompt_len", &prompt_len, "prompt tokens per sequence", "prompt-len");
  options.add("bench.new_tokens", &new_tokens, "new tokens per sequence (no stop tokens)", "new-tokens");
  options.add("bench.repeat", &repeat, "timed repetitions per batch size (the fastest prefill and decode step are kept)",
              "repeat");
  options.add("bench.peak_gbs", &peak_gbs,
              "the device's peak memory bandwidth in GB/s for the roofline (H100 SXM 3350, H200 4800; 0: skip)",
              "peak-gbs");
  options.add("bench.seed", &seed, "seed of the random weights and prompts", "seed");
  options.add("bench.json", &json, "print one JSON line per batch size instead of the table", "json").not_hashed();
  options.add("bench.out", &json_out, "also write the JSON lines to this file", "out").not_hashed();
  llm::declare_options(options, model_options);
  options.add_check([&] {
    if (prompt_len < 1 || new_tokens < 3 || repeat < 1)
      throw UsageError("--prompt-len must be >= 1, --new-tokens >= 3 and --repeat >= 1");
  });
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const auto config = lm_bench_config(shape, layers);
  std::vector<long> batch_sizes;
  for (const auto& b : batches)
    for (const auto& part : split_list(b)) {
      const auto n = parse_int(part);
      if (!n || *n < 1) throw UsageError("--batch: '" + part + "' is not a positive integer", "e.g. --batch 1,32");
      batch_sizes.push_back(static_cast<long>(*n));
    }

  auto start = std::chrono::steady_clock::now();
  const auto model = llm::CausalLM::random(config, model_options, seed);
  spdlog::info("{}: {} layers, hidden {}, vocab {}; random weights on {} in {:.1f} s", shape, config.num_hidden_layers,
               config.hidden_size, config.vocab_size, model_options.device, seconds_since(start));

  Rng rng(seed);
  std::ofstream json_file;
  if (!json_out.empty()) {
    json_file.open(json_out);
    if (!json_file) throw Error("cannot write '" + json_out + "'");
  }
  if (!json) {
    std::cout << fmt::format("{:>6} {:>14} {:>14} {:>12} {:>10} {:>10}\n", "batch", "prefill tok/s", "decode tok/s",
                             "step ms", "GB/s", "roofline");
  }
  for (long batch : batch_sizes) {
    std::vector<std::vector<int>> prompts(static_cast<std::size_t>(batch));
    for (auto& p : prompts)
      for (long i = 0; i < prompt_len; ++i) p.push_back(static_cast<int>(rng.below(static_cast<std::uint64_t>(config.vocab_size))));
    // One generate call per repetition, timed per token: the callback runs once
    // the step's token is on the host (generate reads it there, which waits for
    // the device), so t[0] - start is the prefill and t[i] - t[i-1] decode step i.
    // Which decode path ran (CUDA graph or eager, and why) goes into the JSON.
    llm::GenerationStats stats;
    std::vector<double> stamps;
    llm::GenerationOptions g;
    g.max_new_tokens = static_cast<int>(new_tokens);
    g.stats = &stats;
    auto t0 = std::chrono::steady_clock::now();
    g.on_token = [&](std::size_t sequence, int) {
      if (sequence == 0) stamps.push_back(seconds_since(t0));
      return true;
    };
    llm::GenerationOptions warm = g;
    warm.max_new_tokens = 3;
    llm::generate(*model, prompts, warm, 0);  // warm-up: allocator, kernels (and graph capture)
    double prefill = 1e300, step = 1e300;
    for (long r = 0; r < repeat; ++r) {
      stamps.clear();
      t0 = std::chrono::steady_clock::now();
      llm::generate(*model, prompts, g, 0);
      if (stamps.size() != static_cast<std::size_t>(new_tokens))
        throw Error(fmt::format("lm bench: expected {} tokens per sequence, got {}", new_tokens, stamps.size()));
      prefill = std::min(prefill, stamps.front());
      // From the second decode step on: the first one also captures the CUDA
      // graph (when on), a one-off cost per generate call (debug log).
      step = std::min(step, (stamps.back() - stamps[1]) / static_cast<double>(new_tokens - 2));
    }
    const double bytes = decode_step_bytes(config, static_cast<double>(model->element_size()), batch,
                                           static_cast<double>(prompt_len) + static_cast<double>(new_tokens) / 2);
    const double gbs = bytes / step / 1e9;
    const double roofline = peak_gbs > 0 ? gbs / peak_gbs : 0;
    const double prefill_tps = static_cast<double>(batch * prompt_len) / prefill;
    const double decode_tps = static_cast<double>(batch) / step;  // every sequence gains a token per step
    if (!json) {
      std::cout << fmt::format("{:>6} {:>14.0f} {:>14.1f} {:>12.2f} {:>10.1f} {:>10}\n", batch, prefill_tps,
                               decode_tps, step * 1e3, gbs, peak_gbs > 0 ? fmt::format("{:.0f}%", 100 * roofline) : "-");
    }
    if (json_file || json) {
      const std::string line = nlohmann::json({{"shape", shape},
                                   {"layers", config.num_hidden_layers},
                                   {"device", model_options.device},
                                   {"dtype", model_options.dtype},
                                   {"attention", model_options.attention},
                                   {"cuda_graph", model_options.cuda_graph},
                                   {"decode_path", stats.decode_path},
                                   {"decode_path_reason", stats.eager_reason},
                                   {"batch", batch},
                                   {"prompt_len", prompt_len},
                                   {"new_tokens", new_tokens},
                                   {"prefill_tokens_per_s", prefill_tps},
                                   {"decode_tokens_per_s", decode_tps},
                                   {"decode_step_ms", step * 1e3},
                                   {"decode_bytes_per_step", bytes},
                                   {"decode_gb_per_s", gbs},
                                   {"peak_gb_per_s", peak_gbs},
                                   {"roofline_fraction", roofline}})
                                   .dump() +
                               "\n";
      if (json_file) json_file << line;
      if (json) std::cout << line;
    }
  }
  spdlog::info("peak host memory {:.2f} GiB", llm::peak_host_memory() / (1024.0 * 1024.0 * 1024.0));
  return 0;
}

}  // namespace

int cmd_lm_bench(const std::vector<std::string>& args) { return lm_bench(args); }

}  // namespace sensecf::cli
