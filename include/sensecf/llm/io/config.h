// Hugging Face config.json of a Llama or Mistral checkpoint -> ModelConfig, and
// back (to_json, for `lm init-tiny`); generation_config.json's eos ids; the
// tensor names and shapes such a checkpoint must hold; RoPE inverse
// frequencies exactly as transformers computes them (default, linear and
// llama3 scaling).
//
// Only what the Llama/Mistral decoder needs is kept. Anything the decoder cannot
// honour is refused rather than ignored: other architectures, attention/MLP
// biases, activations other than silu, RoPE types other than default/linear/llama3.
// Torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sensecf::llm {

enum class Family { kLlama, kMistral };
const char* family_name(Family family);        // "llama" | "mistral"
Family parse_family(const std::string& name);  // throws UsageError on anything else

enum class RopeType { kDefault, kLinear, kLlama3 };

struct RopeScaling {
  RopeType type = RopeType::kDefault;  // kDefault: config has no rope_scaling (or rope_type "default")
  double factor = 1.0;                 // linear, llama3
  double low_freq_factor = 0.0;        // llama3
  double high_freq_factor = 0.0;       // llama3
  std::int64_t original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  Family family = Family::kLlama;
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;  // default: num_attention_heads
  std::int64_t head_dim = 0;             // default: hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  std::int64_t sliding_window = 0;  // Mistral; 0 = none (config null or absent on Llama)
  bool tie_word_embeddings = false;
  std::int64_t max_position_embeddings = 2048;
  std::int64_t bos_token_id = -1;           // -1: none
  std::vector<std::int64_t> eos_token_ids;  // config's eos_token_id, int or list
  std::string torch_dtype;                  // as written ("bfloat16", ...); empty if absent

  // Parses config.json text; `source` names it in errors. Validates.
  static ModelConfig from_json(const std::string& text, const std::string& source = "config.json");
  // A small random-init config for tests and the quickstart: hidden 64, 2 layers,
  // 4 heads, 2 kv heads, intermediate 128; llama3 rope scaling for llama,
  // sliding_window 16 for mistral.
  static ModelConfig tiny(Family family, std::int64_t vocab_size);
  // The published config.json of a paper model, by name: "llama-3.1-8b"
  // (Meta-Llama-3.1-8B-Instruct) or "biomistral-7b" (BioMistral-7B, the
  // Mistral-7B-v0.1 shapes). For benchmarks at real shapes with random weights.
  static ModelConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();

  // A config.json that from_json (and transformers) read back to this config.
  std::string to_json() const;
  // Throws UsageError naming the field when the numbers are inconsistent.
  void validate(const std::string& source = "config.json") const;
};

// Reads DIR/config.json (or the file itself when `path` is a file).
ModelConfig load_config(const std::string& path);

// The eos_token_id of DIR/generation_config.json (an int or a list of ints,
// e.g. Llama 3.1 Instruct's [128001, 128008, 128009]); empty when the file is
// absent or has no eos_token_id. Throws UsageError naming the file and
// eos_token_id when it is malformed. (default_stop_ids in model/options.h
// joins it with config.json's and the tokenizer's.)
std::vector<int> read_generation_eos(const std::string& model_dir);

// Every tensor a checkpoint for `config` must hold, by HF name, with its shape
// ([out, in] for linear weights). lm_head.weight is listed only when the
// embeddings are not tied.
std::map<std::string, std::vector<std::int64_t>> expected_tensor_shapes(const ModelConfig& config);

// Compares the tensors a checkpoint holds (name -> shape) with
// expected_tensor_shapes: one line per missing, unexpected or wrongly shaped
// tensor; empty when they fit. lm_head.weight is accepted when tied too (some
// exports keep it); legacy *.rotary_emb.inv_freq buffers are ignored.
std::vector<std::string> tensor_shape_problems(const ModelConfig& config,
                                               const std::map<std::string, std::vector<std::int64_t>>& found);

// RoPE inverse frequencies [head_dim / 2] as transformers' rope init functions
// compute them (modeling_rope_utils.py: default, linear, llama3), evaluated in
// double precision and rounded to float. transformers evaluates them in float32,
// so values may differ from its by about one float ulp.
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace sensecf::llm
