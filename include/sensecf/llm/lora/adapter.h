// PEFT LoRA adapters for the Llama/Mistral decoder: adapter_config.json ->
// LoraConfig (and back, for `lm init-adapter`), which linear layers of a model
// the config targets (PEFT's matching rules), and the tensor names and shapes
// adapter_model.safetensors must hold for them.
//
// The math (huggingface/peft tuners/lora/layer.py): a targeted linear layer
// W [out, in] gets A [r, in] and B [out, r], y = x W^T + scaling (x A^T) B^T
// with scaling = alpha / r, or alpha / sqrt(r) with use_rslora; r and alpha may
// be overridden per module by rank_pattern / alpha_pattern.
//
// Only plain LoRA on q/k/v/o_proj and gate/up/down_proj is supported. Anything
// that would make the adapter compute something else is refused naming the file
// and the field rather than ignored: other peft_types, DoRA, LoRA biases,
// fan_in_fan_out, modules_to_save, targets that are not one of those seven
// layers (lm_head, embeddings, norms). Unknown extra fields are ignored, as
// PEFT's newer versions do.
//
// Torch-free; the tensors themselves (loading, the LoRA linear layer, merging)
// are in lora.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/llm/io/config.h"

namespace sensecf::llm {

struct LoraConfig {
  // How target_modules was given: a list of names (a module matches when its
  // name equals one or ends with "." + one), a regex string (full match against
  // the module name), "all-linear" (every linear layer except lm_head), or null
  // (PEFT's default for llama/mistral: q_proj and v_proj).
  enum class Targets { kList, kRegex, kAllLinear, kDefault };

  std::int64_t r = 8;
  double lora_alpha = 8;
  bool use_rslora = false;
  Targets targets = Targets::kList;
  std::vector<std::string> target_modules;  // kList
  std::string target_regex;                 // kRegex
  // exclude_modules (newer PEFT): a list (same matching as target_modules) or a regex.
  std::vector<std::string> exclude_modules;
  std::string exclude_regex;
  std::vector<std::int64_t> layers_to_transform;  // empty: every layer (list targets only)
  std::vector<std::string> layers_pattern;        // with layers_to_transform only
  // Per-module overrides in file order; the first key matching a module wins.
  // A key matches module name M when M matches the regex "(.*\.)?(KEY)" in full.
  std::vector<std::pair<std::string, std::int64_t>> rank_pattern;
  std::vector<std::pair<std::string, double>> alpha_pattern;
  double lora_dropout = 0;             // training only; recorded
  bool init_lora_weights = true;       // recorded (true: B was zero at init)
  std::string base_model_name_or_path;  // recorded, shown in logs
  std::string task_type = "CAUSAL_LM";
  std::string source = "adapter_config.json";  // names the file in errors

  // Parses adapter_config.json text; `source` names it in errors. Throws
  // UsageError naming the field for anything malformed or unsupported.
  static LoraConfig from_json(const std::string& text, const std::string& source = "adapter_config.json");
  // The adapter_config.json PEFT (>= 0.10) writes for this config: the same
  // keys, sorted, two-space indent. from_json reads it back to this config.
  std::string to_json() const;
};

// Reads DIR/adapter_config.json (or the file itself when `path` is a file).
LoraConfig load_lora_config(const std::string& path);

// One linear layer that gets an adapter.
struct LoraModule {
  std::string name;  // PEFT's module key, e.g. "model.layers.3.self_attn.k_proj"
  std::int64_t layer = 0;
  std::string kind;  // q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj
  std::int64_t in_features = 0, out_features = 0;
  std::int64_t r = 0;
  double alpha = 0;
  double scaling = 0;  // alpha / r, or alpha / sqrt(r) with use_rslora
};

// The seven linear layer kinds of a decoder layer, in forward order.
const std::vector<std::string>& lora_linear_kinds();

// The modules `config` targets in a model of `model`, in layer order and
// forward order within a layer, with their shapes, ranks and scalings. Throws
// UsageError naming config.source when a target matches a module that cannot
// take a LoRA adapter here (lm_head, embed_tokens, a norm, a container) or
// when nothing matches.
std::vector<LoraModule> resolve_lora_modules(const LoraConfig& config, const ModelConfig& model);

// "base_model.model.<module>.lora_A.weight" (which = 'A') or "...lora_B.weight".
std::string lora_tensor_name(const std::string& module, char which);

// Matches the tensors of an adapter file (name -> shape) against `modules`.
// Accepts the saved form "...lora_A.weight" and the in-memory form
// "...lora_A.default.weight" (a state_dict saved as is); the same tensor in both
// forms is ambiguous and refused.
struct AdapterTensors {
  std::map<std::string, std::string> stored;  // canonical name -> name in the file
  std::vector<std::string> problems;          // missing, unexpected, wrongly shaped, ambiguous
};
AdapterTensors match_adapter_tensors(const std::vector<LoraModule>& modules,
                                     const std::map<std::string, std::vector<std::int64_t>>& found);

// For logs: "LoRA r=8 alpha=16 on 64 modules (q_proj, v_proj)"; with
// rank_pattern/alpha_pattern, ranges ("r=4..16").
std::string describe_lora(const std::vector<LoraModule>& modules);

}  // namespace sensecf::llm
