// The options of the model module: how to load and run a model (ModelOptions)
// and how to generate with it (GenerationOptions, its validate() and the
// default stop ids of a model directory), each declared here as [lm] options
// with its default and help text, for the `lm` commands and anything else that
// loads a model (core/options.h: options as data).
//
// Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sensecf/core/options.h"
#include "sensecf/llm/io/config.h"

namespace sensecf::llm {

class Tokenizer;  // text/tokenizer.h

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
// Throws a UsageError unless `name` is "cpu", "cuda" or "cuda:N" (lm.device);
// whether that GPU exists is checked when a model is placed on it.
void check_device_name(const std::string& name);
// lm.adapter, lm.merge_adapter (Decoder::load refuses merge_adapter without an
// adapter).
void declare_adapter_options(Options& options, ModelOptions& model);

// What a generate call did, for benchmarks and logs (GenerationOptions::stats).
struct GenerationStats {
  std::string decode_path;      // "cuda-graph" or "eager"
  std::string eager_reason;     // why the decode steps ran eagerly; empty for "cuda-graph"
  int decode_steps = 0;         // forward passes after the prefill
  double graph_setup_s = 0;     // warm-up step + capture of the graph (part of the call's time)
  int masked_steps = 0;         // steps at which allowed_tokens was called
  double mask_seconds = 0;      // time spent inside allowed_tokens, all calls together
  int compactions = 0;          // times finished sequences left the batch (GenerationOptions::compact)
};

struct GenerationOptions {
  int max_new_tokens = 128;  // >= 0
  double temperature = 0.0;  // 0: greedy; finite, >= 0
  int top_k = 0;             // 0: off; >= 0
  double top_p = 1.0;        // 1: off; in (0, 1]
  // Sampling: the random stream of sequence b. With `seeds` (one per prompt),
  // sequence b draws from its own seeds[b] alone, so the same prompt with the
  // same seed gives the same tokens at any position of any batch (up to float
  // rounding of the batched forward pass, which greedy decoding already
  // tolerates). Without, the streams are derived from `seed` and the batch
  // position ("generate/<b>"), as before.
  std::uint64_t seed = 0;
  std::vector<std::uint64_t> seeds;
  std::vector<int> stop_ids;  // ends a sequence (the stop token is kept)
  std::vector<std::string> stop_strings;  // ends a sequence once its decoded text contains one
  std::function<std::string(const std::vector<int>&)> decode;  // needed for stop_strings
  // Constrained decoding: called once per step for each live sequence before
  // its next token is picked, with `allowed` empty; the callback fills it with
  // the ids the token may be (any order, duplicates ignored). The pick, greedy
  // or sampled with the same temperature / top-k / top-p rules, is then made
  // among those ids only (as if every other logit were -inf, transformers'
  // prefix_allowed_tokens_fn). An empty list or an id outside the vocabulary
  // is an error. The time spent here is GenerationStats::mask_seconds.
  std::function<void(std::size_t sequence, std::vector<int>& allowed)> allowed_tokens;
  // Called for every new token (after allowed_tokens and the pick); return
  // false to end that sequence.
  std::function<bool(std::size_t sequence, int token)> on_token;
  // Eager decoding: once at least half of the batch's live rows (and at least
  // one) have finished, they leave the batch (their K/V cache rows are
  // dropped) so later steps compute only unfinished sequences. The tokens are
  // the same either way; false keeps the batch whole (tests, comparisons).
  // The CUDA-graph decode path has static shapes and never compacts.
  bool compact = true;
  GenerationStats* stats = nullptr;  // filled by generate when set
};

// lm.max_new_tokens, lm.temperature, lm.top_k, lm.top_p, lm.seed: the sampling
// settings (stop strings, prompts and callbacks are the caller's). The
// declaration's check runs validate().
void declare_options(Options& options, GenerationOptions& generation);
// Throws UsageError naming the option key (lm.top_p, ...) when a sampling
// setting is out of range: max_new_tokens < 0, temperature negative or not
// finite, top_k < 0, top_p outside (0, 1]. generate() calls it first.
void validate(const GenerationOptions& generation);

// The ids that end generation for a model directory by default: the union of
// config.json's eos_token_id (`config`), generation_config.json's
// eos_token_id (read_generation_eos) and the tokenizer's end-of-sequence /
// end-of-turn tokens (Tokenizer::eos_ids: </s>, <|end_of_text|>, <|eot_id|>,
// <|eom_id|>), sorted and without duplicates.
std::vector<int> default_stop_ids(const std::string& model_dir, const ModelConfig& config, const Tokenizer& tokenizer);

}  // namespace sensecf::llm
