// The options of the model module: how to load and run a model (ModelOptions)
// and how to generate with it (GenerationOptions), each declared here as [lm]
// options with its default and help text, for the `lm` commands and anything
// else that loads a model (core/options.h: options as data).
//
// Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sensecf/core/options.h"

namespace sensecf::llm {

struct ModelOptions {
  std::string device = "cpu";  // "cpu" or "cuda:N"
  // auto (fp32 on CPU, bf16 on CUDA) | float32 | bfloat16 | float16; float64
  // too, for numerical checks (finite differences), not offered by the CLI.
  std::string dtype = "auto";
  // auto (sdpa where LibTorch >= 2 has it, else eager) | eager (matmul + fp32
  // softmax, transformers' "eager") | sdpa (scaled_dot_product_attention)
  std::string attention = "auto";
  std::string adapter;          // PEFT LoRA adapter directory; empty: none
  bool merge_adapter = false;   // fold the adapter into the weights at load time
  // generate's decode steps (one new token per sequence) as one captured and
  // replayed CUDA graph instead of ~30 kernel launches per layer: auto (on for
  // CUDA devices when the build has a CUDA LibTorch) | on (UsageError on a CPU
  // device or a build without CUDA LibTorch) | off. The prefill stays eager.
  std::string cuda_graph = "auto";
  // The frozen projection weights (q/k/v/o, gate/up/down) as NF4 (model/nf4.h):
  // none | nf4 | nf4-dq (double quantisation of the block scales, QLoRA's
  // recipe). Embeddings, norms and lm_head stay in dtype.
  std::string quant = "none";
};

// lm.device, lm.dtype, lm.attention, lm.cuda_graph, lm.quant: how a model runs (also for
// models made with random weights, which take no adapter).
void declare_options(Options& options, ModelOptions& model);
// lm.adapter, lm.merge_adapter (Decoder::load refuses merge_adapter without an
// adapter).
void declare_adapter_options(Options& options, ModelOptions& model);

// What a generate call did, for benchmarks and logs (GenerationOptions::stats).
struct GenerationStats {
  std::string decode_path;      // "cuda-graph" or "eager"
  std::string eager_reason;     // why the decode steps ran eagerly; empty for "cuda-graph"
  int decode_steps = 0;         // forward passes after the prefill
  double graph_setup_s = 0;     // warm-up step + capture of the graph (part of the call's time)
};

struct GenerationOptions {
  int max_new_tokens = 128;
  double temperature = 0.0;  // 0: greedy
  int top_k = 0;             // 0: off
  double top_p = 1.0;        // 1: off
  std::uint64_t seed = 0;    // sampling: per-sequence streams derived from it
  std::vector<int> stop_ids;  // ends a sequence (the stop token is kept)
  std::vector<std::string> stop_strings;  // ends a sequence once its decoded text contains one
  std::function<std::string(const std::vector<int>&)> decode;  // needed for stop_strings
  // Called for every new token; return false to end that sequence.
  std::function<bool(std::size_t sequence, int token)> on_token;
  GenerationStats* stats = nullptr;  // filled by generate when set
};

// lm.max_new_tokens, lm.temperature, lm.top_k, lm.top_p, lm.seed: the sampling
// settings (stop strings, prompts and callbacks are the caller's).
void declare_options(Options& options, GenerationOptions& generation);

}  // namespace sensecf::llm
