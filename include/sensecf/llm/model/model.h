// A causal language model as the rest of sensecf holds it: CausalLM (the
// logits of a sequence, the adapter it runs with) and generate (batched with
// left padding; greedy or sampled; optionally constrained to allowed ids). The implementation is the Llama / Mistral
// decoder of decoder.h, which computes what Hugging Face transformers computes
// for the same checkpoint. A PEFT LoRA adapter (adapter.h, lora.h) is applied at
// load time, either unmerged (every targeted projection computes
// x W^T + s (x A^T) B^T, as PEFT does) or merged into the weights (W + s B A,
// faster, same numbers up to rounding).
//
// Torch-free, so that the CLI and the sweep compile without LibTorch headers.
// The options of loading and generating: options.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sensecf/llm/io/config.h"
#include "sensecf/llm/lora/adapter.h"
#include "sensecf/llm/model/options.h"

namespace sensecf::llm {

class CausalLM {
 public:
  // Loads config.json and the weights (safetensors or pytorch_model.bin) of a
  // Hugging Face model directory, then the adapter of options.adapter (if any):
  // Decoder::load.
  static std::unique_ptr<CausalLM> load(const std::string& dir, const ModelOptions& options = {});
  // A model of `config` with random weights made directly on options.device
  // (random_weights in tiny.h): benchmarks at real shapes without a checkpoint.
  // options.adapter must be empty. Decoder::random.
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

// Generates continuations of a batch of prompts (left-padded with pad_id, so
// sequences of different lengths run together). Returns the new tokens of
// each sequence. Throws UsageError for options that validate() refuses.
//
// Each step picks the next token of every live sequence at once on the
// model's device (greedy: argmax; sampled: temperature -> top-k -> top-p in
// fp32, then a draw with the sequence's own uniform) and moves only the [B]
// chosen ids to the host. Sequence b's uniforms come from its own stream
// (GenerationOptions::seeds), so a seed gives the same text at any batch
// position and on any device, as far as float rounding allows.
std::vector<std::vector<int>> generate(const CausalLM& model, const std::vector<std::vector<int>>& prompts,
                                       const GenerationOptions& options, int pad_id);

// generate's choice of next tokens on its own, for tests and benchmarks: the
// token of each of `rows` rows of fp32 logits (row-major [rows, V], host
// memory), greedy when options.temperature is 0, else sampled with
// options.temperature, top_k and top_p, uniforms[r] (in [0, 1)) being row
// r's draw. Runs on the CPU.
std::vector<int> pick_tokens(const std::vector<float>& logits, std::size_t rows, const GenerationOptions& options,
                             const std::vector<double>& uniforms);

}  // namespace sensecf::llm
