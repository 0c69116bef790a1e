// The Llama / Mistral decoder (LlamaForCausalLM, MistralForCausalLM) in LibTorch,
// computing what Hugging Face transformers computes for the same checkpoint:
// RMSNorm in fp32, rotate-half RoPE (default, linear or llama3 frequencies),
// grouped-query attention, SwiGLU MLP, causal + sliding-window + padding mask,
// and a KV cache for incremental decoding. Parameters keep their HF names
// (model.layers.{i}.self_attn.q_proj.weight, ...), one to one.
//
// A PEFT LoRA adapter (adapter.h, lora.h) can be applied at load time, either
// unmerged (every targeted projection computes x W^T + s (x A^T) B^T, as PEFT
// does) or merged into the weights (W + s B A, faster, same numbers up to
// rounding).
//
// This header is torch-free so the CLI and the sweep can hold a model without
// compiling LibTorch headers; the implementation is in model.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sensecf/llm/adapter.h"
#include "sensecf/llm/config.h"

namespace sensecf::llm {

struct ModelOptions {
  std::string device = "cpu";  // "cpu" or "cuda:N"
  std::string dtype = "auto";  // auto (fp32 on CPU, bf16 on CUDA) | float32 | bfloat16 | float16
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
};

class CausalLM {
 public:
  // Loads config.json and the safetensors weights of a Hugging Face model
  // directory, then the adapter of options.adapter (if any).
  static std::unique_ptr<CausalLM> load(const std::string& dir, const ModelOptions& options = {});
  // A model of `config` with random weights made directly on options.device
  // (random_weights in tiny.h): benchmarks at real shapes without a checkpoint.
  // options.adapter must be empty.
  static std::unique_ptr<CausalLM> random(const ModelConfig& config, const ModelOptions& options, std::uint64_t seed);
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;

  // Logits of the last layer for one unpadded sequence: [T, V] row-major, fp32.
  virtual std::vector<float> logits(const std::vector<int>& ids) const = 0;
  // The same, computed token by token through the KV cache (tests check that
  // both paths agree).
  virtual std::vector<float> logits_incremental(const std::vector<int>& ids) const = 0;

  // The linear layers that got a LoRA adapter (empty without one), in layer
  // order; describe_lora() renders them for logs. Also filled when merged.
  virtual const std::vector<LoraModule>& adapter_modules() const = 0;
  virtual bool adapter_merged() const = 0;
  // Bytes per weight and activation element in the dtype the model runs in
  // (ModelOptions::dtype resolved: 4 for fp32, 2 for bf16/fp16).
  virtual std::size_t element_size() const = 0;
};

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

// Generates continuations of a batch of prompts (left-padded with pad_id, so
// sequences of different lengths run together). Returns the new tokens of
// each sequence.
std::vector<std::vector<int>> generate(const CausalLM& model, const std::vector<std::vector<int>>& prompts,
                                       const GenerationOptions& options, int pad_id);

}  // namespace sensecf::llm
