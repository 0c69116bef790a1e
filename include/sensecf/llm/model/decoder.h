// The Llama / Mistral decoder (LlamaForCausalLM, MistralForCausalLM) on LibTorch
// tensors, computing what Hugging Face transformers computes for the same
// checkpoint: RMSNorm in fp32, rotate-half RoPE (default, linear or llama3
// frequencies), grouped-query attention, SwiGLU MLP, causal + sliding-window +
// padding mask, and a KV cache for incremental decoding. Weights keep their HF
// names (model.layers.{i}.self_attn.q_proj.weight, ...), one to one; the seven
// projections of a layer are LoraLinear (lora.h).
//
// Two uses of one forward pass:
//   - inference, as the CausalLM that CausalLM::load returns: logits(),
//     logits_incremental() and generate() run under NoGradGuard;
//   - LoRA fine-tuning: forward() runs under the caller's grad mode. The base
//     weights never require grad (they are detached when the decoder takes
//     them); the A and B of the attached adapter are the decoder's own leaf
//     tensors (lora_parameters), which set_lora_trainable makes require grad,
//     so a loss on the logits backpropagates to them and to nothing else.
//
// Precision: the model dtype for weights and activations; RMSNorm, the softmax
// of eager attention, the LoRA branch (A and B are held in it too) and the
// logits in fp32 — in fp64 for a float64 model, which exists for numerical
// checks such as finite differences.
//
// Only light ATen/c10 headers here; decoder.cpp includes <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/llm/io/config.h"
#include "sensecf/llm/io/weights.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/model.h"

namespace sensecf::llm {

struct KvCache;     // per-layer keys and values of incremental decoding (decoder.cpp)
class DecodeGraph;  // generate's CUDA-graph decode step (generation.cpp)

class Decoder final : public CausalLM {
 public:
  // config.json, the weights and options.adapter of a model directory (what
  // CausalLM::load returns). A mismatched adapter is reported before the
  // weights are read.
  static std::unique_ptr<Decoder> load(const std::string& dir, const ModelOptions& options = {});
  // Random weights (random_weights in tiny.h) for `config`; options.adapter must be empty.
  static std::unique_ptr<Decoder> random(const ModelConfig& config, const ModelOptions& options, std::uint64_t seed);
  // From weights in memory, by HF name, taken to options.device in options.dtype
  // (without copying those already there). options.adapter is not read: attach
  // one. Throws sensecf::Error naming a missing tensor.
  Decoder(ModelConfig config, const WeightMap& weights, const ModelOptions& options);
  ~Decoder() override;

  // CausalLM: inference, under NoGradGuard.
  const ModelConfig& config() const override { return config_; }
  std::vector<float> logits(const std::vector<int>& ids) const override;
  std::vector<float> logits_incremental(const std::vector<int>& ids) const override;
  const std::vector<LoraModule>& adapter_modules() const override { return adapter_modules_; }
  bool adapter_merged() const override { return adapter_merged_; }
  std::size_t element_size() const override;

  c10::Device device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }

  // Attaches an adapter made for this model's config (load_lora_adapter,
  // init_lora_adapter): copies of its A and B go to the targeted projections,
  // on the model's device in fp32 (fp64 for a float64 model), as PEFT keeps
  // them; with `merge` they are folded into the weights instead. A decoder takes
  // one adapter.
  void attach(const LoraAdapter& adapter, bool merge = false);

  // The A [r, in] and B [out, r] of every adapted projection under PEFT's saved
  // names (base_model.model.<module>.lora_A.weight, ...), in module order: the
  // tensors forward() computes with, not copies. Empty without an adapter or
  // once merged.
  std::vector<std::pair<std::string, at::Tensor>> lora_parameters() const;
  // PEFT's merge_adapter / unmerge_adapter: fold the attached adapter into the
  // weights for fast inference while keeping A and B, and take it out again
  // to go on training. Throws without an adapter (or with one attached merged
  // for good, or on NF4 weights).
  void merge_adapter();
  void unmerge_adapter();
  bool adapter_folded() const { return adapter_folded_; }
  // Makes every A and B require grad (or not). Throws without an unmerged adapter.
  void set_lora_trainable(bool trainable = true);
  // Gradient checkpointing for training passes (forward/forward_at under grad
  // mode): each layer keeps only its input and is recomputed in backward, so
  // activation memory is one layer's instead of every layer's (LoRA dropout
  // draws the same masks in the recomputation). Numbers are unchanged.
  void set_gradient_checkpointing(bool on);
  // One layer of a training pass without a cache (CheckpointedLayer's body).
  at::Tensor checkpoint_layer(std::size_t l, const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                              const at::Tensor& bias) const;
  // Dropout probability on the input of every LoRA branch (PEFT's
  // lora_dropout): the trainer sets it for training steps and 0 for evaluation.
  // Throws for p outside [0, 1).
  void set_lora_dropout(double p);
  // The base weights by HF name, in forward order (lm_head.weight unless tied):
  // frozen, they never require grad. NF4 projections are not listed.
  std::vector<std::pair<std::string, at::Tensor>> base_weights() const;

  // Logits [B, T, V] of whole sequences: ids [B, T] (integer), mask [B, T]
  // (1 real token, 0 left padding), moved to the model's device. fp32 logits
  // (fp64 for a float64 model). Runs under the caller's grad mode; logits() is
  // this pass for one unpadded sequence under NoGradGuard.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask) const;
  // The logits [K, V] of positions (rows[k], cols[k]) of such a batch, and of
  // those only: what a loss on completion tokens needs (the full [B, T, V]
  // logits of a 128k vocabulary at batch 4 x 512 are 1 GB in fp32). Same grad
  // mode and precision as forward().
  at::Tensor forward_at(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& rows,
                        const at::Tensor& cols) const;
  // Sum over k of the cross-entropy of targets[k] under the logits of position
  // (rows[k], cols[k]): forward_at and the loss in one, the training loss.
  // Up to `chunk_rows` positions it is exactly forward_at + cross_entropy.
  // Beyond, the frozen head runs chunk_rows positions at a time inside one
  // autograd function that keeps d(loss)/d(its input) [K, H] instead of the
  // logits [K, V], so the head costs one chunk's logits of memory whatever K
  // is; value and gradients equal the one-chunk path's to float rounding.
  at::Tensor loss_sum_at(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& rows,
                         const at::Tensor& cols, const at::Tensor& targets, std::int64_t chunk_rows = 256) const;

 private:
  struct Layer {
    at::Tensor input_norm, post_norm;
    LoraLinear q, k, v, o, gate, up, down;
  };
  // store(l, k, v) puts the new keys and values [B, K, T, D] of layer l where
  // they belong and returns the keys and values [B, K, S, D] to attend over.
  using KvStore =
      std::function<std::pair<at::Tensor, at::Tensor>(std::size_t layer, const at::Tensor& k, const at::Tensor& v)>;

  // Incremental decoding (generate): logits [B, T, V] of new tokens ids [B, T]
  // with mask [B, T], or [B, 1, V] of the last position only; extends `cache`.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& new_mask, KvCache& cache, bool last_only = false) const;
  // The last layer's hidden states [B, T, H] of new tokens (before the final
  // norm and the head); extends `cache`.
  at::Tensor hidden(const at::Tensor& ids, const at::Tensor& new_mask, KvCache& cache) const;
  // The last layer's hidden states [K, H] of positions (rows[k], cols[k]) of a
  // whole batch (forward_at, loss_sum_at).
  at::Tensor hidden_at(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& rows,
                       const at::Tensor& cols) const;
  KvCache empty_cache(long batch, long reserve = 0) const;
  // Throws an Error naming the sequence and position of an id outside [0, vocab_size).
  at::Tensor ids_tensor(const std::vector<std::vector<int>>& rows) const;
  // Throws an Error when `logits` holds NaN or inf, naming the first weight
  // (base or adapter) that is not finite, else suggesting another dtype.
  void check_finite_logits(const at::Tensor& logits) const;

  // The pieces of a forward pass, shared by forward() (any T) and the
  // CUDA-graph decode step (T = 1, DecodeGraph), so that both compute the same.
  std::pair<at::Tensor, at::Tensor> rope(const at::Tensor& positions) const;
  at::Tensor attention_bias(const at::Tensor& real, const at::Tensor& q_index) const;
  at::Tensor embed(const at::Tensor& ids) const;
  at::Tensor layers(at::Tensor h, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                    const KvStore& store) const;
  at::Tensor layer(std::size_t l, const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                   const at::Tensor& bias, const KvStore& store) const;
  at::Tensor head(const at::Tensor& h) const;
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  // Replaces the dense projection weights by NF4 (ModelOptions::quant).
  void quantize_projections(const std::string& quant);
  LoraLinear& projection(const LoraModule& m);
  const LoraLinear& projection(const LoraModule& m) const;

  ModelConfig config_;
  c10::Device device_;
  c10::ScalarType dtype_;    // weights and activations
  c10::ScalarType compute_;  // RMSNorm, softmax, LoRA, logits: fp32, or fp64 for a float64 model
  bool sdpa_ = false;
  at::Tensor embed_, norm_, lm_head_, inv_freq_;
  std::vector<Layer> layers_;
  std::vector<LoraModule> adapter_modules_;
  bool adapter_merged_ = false;
  std::string quant_ = "none";
  bool checkpointing_ = false;
  bool adapter_folded_ = false;  // merge_adapter: W holds the adapter, A and B kept
  // May generate replay its decode steps as a CUDA graph? If not, why.
  bool graph_on_ = false;
  std::string graph_off_reason_;
  mutable std::atomic<bool> graph_failed_{false};  // a capture failed: stay eager from then on

  friend class DecodeGraph;
  friend std::vector<std::vector<int>> generate(const CausalLM&, const std::vector<std::vector<int>>&,
                                                const GenerationOptions&, int);
};

}  // namespace sensecf::llm
