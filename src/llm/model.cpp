// Llama / Mistral forward pass and generation in LibTorch (see model.h).
//
// Shapes: B batch, T new tokens, S cached + new tokens, H query heads, K kv
// heads, D head dim, E hidden size, V vocabulary, C cache capacity. The seven
// projections of a layer are LoraLinear (lora.h): a plain x W^T until an
// adapter is attached.
//
// With SENSECF_TORCH_CUDA=1 (the build found a CUDA LibTorch) generate can run
// its decode steps as one replayed CUDA graph (DecodeGraph below).
#include "sensecf/llm/model.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdint>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#if defined(SENSECF_TORCH_CUDA) && SENSECF_TORCH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define SENSECF_CUDA_GRAPHS 1
#else
#define SENSECF_CUDA_GRAPHS 0
#endif

#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/llm/lora.h"
#include "sensecf/llm/tiny.h"
#include "sensecf/llm/weights.h"

namespace sensecf::llm {
namespace {

// LibTorch 2 has a fused scaled_dot_product_attention (flash / memory-efficient
// kernels on CUDA); LibTorch 1.13 (Debian's) does not.
#if TORCH_VERSION_MAJOR >= 2
constexpr bool kHaveSdpa = true;
#else
constexpr bool kHaveSdpa = false;
#endif

// Per layer, keys and values live in buffers of `capacity` positions that grow
// by doubling (generate reserves prompt + new tokens up front), so a decode
// step writes one column instead of copying the whole cache.
struct KvCache {
  std::vector<torch::Tensor> k, v;  // per layer [B, K, capacity, D]; the first S = mask.size(1) are filled
  long reserved = 0;             // capacity to allocate on first use
  torch::Tensor mask;            // [B, S] 1 = real token, 0 = padding
  torch::Tensor next_position;   // [B] position id of the next token

  // Writes [B, K, T, D] to layer l at positions [start, start + T); returns the
  // filled part [B, K, start + T, D].
  std::pair<torch::Tensor, torch::Tensor> append(std::size_t l, const torch::Tensor& key, const torch::Tensor& value,
                                                 long start) {
    const long T = key.size(2), end = start + T;
    auto grow = [&](torch::Tensor& buffer, const torch::Tensor& like) {
      const long capacity = buffer.defined() ? buffer.size(2) : 0;
      if (end <= capacity) return;
      auto bigger = torch::empty({like.size(0), like.size(1), std::max({end, 2 * capacity, reserved}), like.size(3)},
                                 like.options());
      if (start > 0) bigger.narrow(2, 0, start).copy_(buffer.narrow(2, 0, start));
      buffer = bigger;
    };
    grow(k[l], key);
    grow(v[l], value);
    k[l].narrow(2, start, T).copy_(key);
    v[l].narrow(2, start, T).copy_(value);
    return {k[l].narrow(2, 0, end), v[l].narrow(2, 0, end)};
  }
};

torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device) {
  if (name == "auto") return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") {
    if (!device.is_cuda() && TORCH_VERSION_MAJOR < 2)
      throw UsageError("float16 on the CPU: LibTorch " TORCH_VERSION " has no half-precision matrix products there",
                       "use --dtype bfloat16 or float32 on the CPU; float16 is for CUDA");
    return torch::kFloat16;
  }
  throw UsageError("unknown dtype '" + name + "'", "use auto, float32, bfloat16 or float16");
}

bool parse_attention(const std::string& name) {
  if (name == "auto") return kHaveSdpa;
  if (name == "eager") return false;
  if (name == "sdpa") {
    if (!kHaveSdpa)
      throw UsageError("attention 'sdpa' needs LibTorch >= 2.0; this build uses " TORCH_VERSION,
                       "use --attention eager (or auto)");
    return true;
  }
  throw UsageError("unknown attention implementation '" + name + "'", "use auto, eager or sdpa");
}

// ModelOptions::cuda_graph resolved for a device: whether generate may replay
// its decode steps as a CUDA graph, and if not, why (for logs and stats).
struct GraphChoice {
  bool on = false;
  std::string off_reason;
};

GraphChoice parse_cuda_graph(const std::string& mode, const torch::Device& device) {
  if (mode != "auto" && mode != "on" && mode != "off")
    throw UsageError("unknown cuda_graph mode '" + mode + "'", "use auto, on or off");
  if (mode == "off") return {false, "cuda_graph off"};
  if (!device.is_cuda()) {
    if (mode == "on")
      throw UsageError("cuda_graph 'on' needs a CUDA device; the model runs on " + device.str(),
                       "pass --device cuda:N, or --cuda-graph auto (on for CUDA devices only) or off");
    return {false, "device " + device.str()};
  }
  if (!SENSECF_CUDA_GRAPHS) {
    if (mode == "on")
      throw UsageError("cuda_graph 'on': this build uses a LibTorch without CUDA (" TORCH_VERSION ")",
                       "rebuild against a CUDA LibTorch (docs/gpu.md), or pass --cuda-graph auto or off");
    return {false, "this build has no CUDA LibTorch"};
  }
  return {true, ""};
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

class DecodeGraph;

class Llama final : public CausalLM {
 public:
  Llama(ModelConfig config, std::map<std::string, torch::Tensor> weights, torch::Device device,
        torch::ScalarType dtype, bool sdpa, GraphChoice graph)
      : config_(std::move(config)), device_(device), dtype_(dtype), sdpa_(sdpa), graph_(std::move(graph)) {
    auto take = [&](const std::string& name) {
      const auto it = weights.find(name);
      if (it == weights.end()) throw Error("checkpoint lacks tensor '" + name + "'");
      return it->second.to(device_, dtype_).contiguous();
    };
    embed_ = take("model.embed_tokens.weight");
    for (int i = 0; i < config_.num_hidden_layers; ++i) {
      const std::string p = fmt::format("model.layers.{}.", i);
      Layer layer;
      layer.input_norm = take(p + "input_layernorm.weight");
      layer.q.weight = take(p + "self_attn.q_proj.weight");
      layer.k.weight = take(p + "self_attn.k_proj.weight");
      layer.v.weight = take(p + "self_attn.v_proj.weight");
      layer.o.weight = take(p + "self_attn.o_proj.weight");
      layer.post_norm = take(p + "post_attention_layernorm.weight");
      layer.gate.weight = take(p + "mlp.gate_proj.weight");
      layer.up.weight = take(p + "mlp.up_proj.weight");
      layer.down.weight = take(p + "mlp.down_proj.weight");
      layers_.push_back(std::move(layer));
    }
    norm_ = take("model.norm.weight");
    lm_head_ = config_.tie_word_embeddings ? embed_ : take("lm_head.weight");
    const auto inv = rope_inv_freq(config_);
    inv_freq_ = torch::tensor(inv, torch::kFloat32).to(device_);
  }

  const ModelConfig& config() const override { return config_; }
  const std::vector<LoraModule>& adapter_modules() const override { return adapter_modules_; }
  bool adapter_merged() const override { return adapter_merged_; }
  std::size_t element_size() const override { return c10::elementSize(dtype_); }

  // Attaches the adapter's A/B to the targeted projections (on the model's
  // device, fp32 as PEFT keeps them), or folds them into the weights.
  void attach(const LoraAdapter& adapter, bool merge) {
    for (const auto& m : adapter.modules) {
      LoraLinear& linear = projection(m);
      const auto& [A, B] = adapter.weights.at(m.name);
      linear.lora_A = A.to(device_, torch::kFloat32).contiguous();
      linear.lora_B = B.to(device_, torch::kFloat32).contiguous();
      linear.scaling = m.scaling;
      if (merge) linear.merge();
    }
    adapter_modules_ = adapter.modules;
    adapter_merged_ = merge;
  }

  std::vector<float> logits(const std::vector<int>& ids) const override {
    torch::NoGradGuard no_grad;
    KvCache cache = empty_cache(1);
    const auto out = forward(ids_tensor({ids}), torch::ones({1, static_cast<long>(ids.size())}, torch::kInt64), cache);
    return to_vector(out[0]);
  }

  std::vector<float> logits_incremental(const std::vector<int>& ids) const override {
    torch::NoGradGuard no_grad;
    KvCache cache = empty_cache(1);
    std::vector<torch::Tensor> rows;
    for (int id : ids) {
      rows.push_back(forward(ids_tensor({{id}}), torch::ones({1, 1}, torch::kInt64), cache)[0]);
    }
    return to_vector(torch::cat(rows, 0));
  }

  KvCache empty_cache(long batch, long reserve = 0) const {
    KvCache c;
    c.k.resize(static_cast<std::size_t>(config_.num_hidden_layers));
    c.v.resize(c.k.size());
    c.reserved = reserve;
    c.mask = torch::zeros({batch, 0}, torch::dtype(torch::kInt64).device(device_));
    c.next_position = torch::zeros({batch}, torch::dtype(torch::kInt64).device(device_));
    return c;
  }

  torch::Tensor ids_tensor(const std::vector<std::vector<int>>& rows) const {
    std::vector<std::int64_t> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return torch::tensor(flat, torch::kInt64).view({static_cast<long>(rows.size()), -1}).to(device_);
  }

  // ids [B, T]; mask [B, T] (1 real, 0 left padding) for the new tokens.
  // Returns fp32 logits [B, T, V] (or [B, 1, V] for the last position only,
  // which is all generation needs: at 8B shapes the full prefill logits are
  // gigabytes) and extends the cache.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& new_mask, KvCache& cache,
                        bool last_only = false) const {
    const long T = ids.size(1);
    const auto mask_new = new_mask.to(device_);
    // Position ids as transformers derives them from the attention mask:
    // cumulative count of real tokens - 1 (padding gets 1, it is masked anyway).
    auto positions = cache.next_position.unsqueeze(1) + mask_new.cumsum(1) - 1;  // [B, T]
    positions = positions.masked_fill(mask_new == 0, 1);
    cache.next_position = cache.next_position + mask_new.sum(1);
    const long start = cache.mask.size(1);               // tokens already cached
    cache.mask = torch::cat({cache.mask, mask_new}, 1);  // [B, S]
    const long S = cache.mask.size(1);

    const auto [cos, sin] = rope(positions);
    const auto q_index = torch::arange(S - T, S, torch::dtype(torch::kInt64).device(device_)).view({T, 1});
    const auto bias = attention_bias(cache.mask, q_index);  // [B, 1, T, S]
    auto store = [&cache, start](std::size_t l, const torch::Tensor& k, const torch::Tensor& v) {
      return cache.append(l, k, v, start);  // the filled part [B, K, S, D]
    };
    auto h = layers(embed(ids), cos, sin, bias, store);
    if (last_only) h = h.narrow(1, T - 1, 1);
    return head(h);
  }

  static torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& bias) {
#if TORCH_VERSION_MAJOR >= 2
    return at::scaled_dot_product_attention(q, k, v, bias, /*dropout_p=*/0.0, /*is_causal=*/false);
#else
    (void)q, (void)k, (void)v, (void)bias;
    throw Error("scaled_dot_product_attention needs LibTorch >= 2.0");
#endif
  }

 private:
  struct Layer {
    torch::Tensor input_norm, post_norm;
    LoraLinear q, k, v, o, gate, up, down;
  };

  LoraLinear& projection(const LoraModule& m) {
    if (m.layer < 0 || m.layer >= static_cast<std::int64_t>(layers_.size()))
      throw Error("LoRA module " + m.name + ": no layer " + std::to_string(m.layer));
    Layer& l = layers_[static_cast<std::size_t>(m.layer)];
    const std::map<std::string, LoraLinear*> by_kind = {{"q_proj", &l.q},       {"k_proj", &l.k},
                                                        {"v_proj", &l.v},       {"o_proj", &l.o},
                                                        {"gate_proj", &l.gate}, {"up_proj", &l.up},
                                                        {"down_proj", &l.down}};
    const auto it = by_kind.find(m.kind);
    if (it == by_kind.end()) throw Error("LoRA module " + m.name + ": unknown projection '" + m.kind + "'");
    return *it->second;
  }

  // transformers' LlamaRMSNorm: in fp32, weight applied after casting back.
  torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight) const {
    const auto h = x.to(torch::kFloat32);
    const auto normed = h * torch::rsqrt(h.pow(2).mean(-1, true) + config_.rms_norm_eps);
    return weight * normed.to(dtype_);
  }

  // The pieces of a forward pass, shared by forward() (eager, any T) and the
  // CUDA-graph decode step (T = 1, DecodeGraph), so that both compute the same.

  // RoPE cos and sin [B, 1, T, D] in the model dtype for position ids [B, T]:
  // in fp32 (transformers disables autocast there), then cast.
  std::pair<torch::Tensor, torch::Tensor> rope(const torch::Tensor& positions) const {
    const auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.view({1, 1, -1});  // [B, T, D/2]
    const auto emb = torch::cat({freqs, freqs}, -1);
    return {emb.cos().to(dtype_).unsqueeze(1), emb.sin().to(dtype_).unsqueeze(1)};
  }

  // Additive mask [B, 1, T, N] for queries at cache indices q_index [T, 1] (a
  // device tensor) over N = real.size(1) key columns, real [B, N] (1 real
  // token, 0 padding or not yet written): key j is visible to query i iff j is
  // a real token, j <= i (causal) and, with a sliding window W, j > i - W;
  // others get the dtype's lowest value, which softmax turns into exactly zero.
  torch::Tensor attention_bias(const torch::Tensor& real, const torch::Tensor& q_index) const {
    const long B = real.size(0), N = real.size(1), T = q_index.size(0);
    const auto k_index = torch::arange(0, N, torch::dtype(torch::kInt64).device(device_)).view({1, N});
    auto allowed = (k_index <= q_index).unsqueeze(0) & (real.unsqueeze(1) != 0);  // [B, T, N]
    if (config_.sliding_window > 0) {
      // In positions, not cache indices: left padding shifts them equally, so the difference is the same.
      allowed = allowed & (k_index > q_index - config_.sliding_window).unsqueeze(0);
    }
    const double min_value = dtype_ == torch::kFloat32 ? std::numeric_limits<float>::lowest()
                                                       : (dtype_ == torch::kFloat16 ? -65504.0 : -3.3895e38);
    return torch::zeros({B, 1, T, N}, torch::dtype(dtype_).device(device_))
        .masked_fill(allowed.logical_not().unsqueeze(1), min_value);
  }

  torch::Tensor embed(const torch::Tensor& ids) const {  // [B, T] -> [B, T, E]
    return embed_.index_select(0, ids.reshape(-1)).reshape({ids.size(0), ids.size(1), -1});
  }

  // Every decoder layer on hidden states h [B, T, E]. store(l, k, v) puts the
  // new keys and values [B, K, T, D] of layer l into the cache and returns the
  // keys and values [B, K, S, D] to attend over, whose S columns bias
  // [B, 1, T, S] masks.
  template <typename Store>
  torch::Tensor layers(torch::Tensor h, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& bias,
                       Store&& store) const {
    const long B = h.size(0), T = h.size(1);
    const long H = config_.num_attention_heads, K = config_.num_key_value_heads, D = config_.head_dim;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    // Grouped-query attention without copying kv heads: query head h = k * G + g
    // uses kv head k (transformers' repeat_kv order), so the G query heads of a
    // kv head are stacked along the rows: q [B, K, G*T, D] against k [B, K, S, D].
    const long G = H / K;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const auto& w = layers_[l];
      const auto x = rms_norm(h, w.input_norm);
      auto q = w.q.forward(x).reshape({B, T, H, D}).transpose(1, 2);
      auto k = w.k.forward(x).reshape({B, T, K, D}).transpose(1, 2);
      auto v = w.v.forward(x).reshape({B, T, K, D}).transpose(1, 2);
      q = q * cos + rotate_half(q) * sin;
      k = k * cos + rotate_half(k) * sin;
      const auto [keys, values] = store(l, k, v);  // [B, K, S, D]
      const long S = keys.size(2);
      const auto grouped = q.reshape({B, K, G * T, D});
      torch::Tensor context;  // [B, K, G*T, D]
      if (sdpa_) {
        context = sdpa(grouped, keys, values, bias.unsqueeze(2).expand({B, 1, G, T, S}).reshape({B, 1, G * T, S}));
      } else {
        // transformers' eager attention: softmax in fp32, then back to the model dtype.
        const auto scores = torch::matmul(grouped, keys.transpose(2, 3)).reshape({B, K, G, T, S}) * scale +
                            bias.unsqueeze(2);  // [B, K, G, T, S]
        const auto probs = torch::softmax(scores, -1, torch::kFloat32).to(dtype_).reshape({B, K, G * T, S});
        context = torch::matmul(probs, values);
      }
      const auto attn = context.reshape({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
      h = h + w.o.forward(attn);
      const auto y = rms_norm(h, w.post_norm);
      const auto gate = w.gate.forward(y);
      h = h + w.down.forward(gate * torch::sigmoid(gate) * w.up.forward(y));
    }
    return h;
  }

  // Final norm and lm_head: fp32 logits [B, T, V].
  torch::Tensor head(const torch::Tensor& h) const {
    return torch::matmul(rms_norm(h, norm_), lm_head_.t()).to(torch::kFloat32);
  }

  static std::vector<float> to_vector(const torch::Tensor& t) {
    const auto c = t.to(torch::kCPU, torch::kFloat32).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }

  ModelConfig config_;
  torch::Device device_;
  torch::ScalarType dtype_;
  bool sdpa_ = false;
  torch::Tensor embed_, norm_, lm_head_, inv_freq_;
  std::vector<Layer> layers_;
  std::vector<LoraModule> adapter_modules_;
  bool adapter_merged_ = false;
  GraphChoice graph_;                          // may generate replay decode steps as a CUDA graph?
  mutable std::atomic<bool> graph_failed_{false};  // a capture failed: stay eager from then on

  friend class DecodeGraph;
  friend std::vector<std::vector<int>> llm::generate(const CausalLM&, const std::vector<std::vector<int>>&,
                                                     const GenerationOptions&, int);
};

#if SENSECF_CUDA_GRAPHS
// generate's decode steps (T = 1) as one captured and replayed CUDA graph, as
// gpt-fast and vLLM do: at small batches an eager step is bound by launching
// its ~30 kernels per layer, a replay launches them all at once. Shapes are
// static for one generate call: batch B and capacity C (longest prompt + new
// tokens; the prefill allocated the K/V buffers at C, and nothing grows later).
//
// Per step the host writes the new ids, their position ids, their mask and the
// cache column they go to into one small device buffer (one copy); the graph
// reads it there and computes everything else: RoPE, the attention mask over
// all C columns, the embedding, every layer (new K/V written with index_copy_
// at the column the buffer names, attention over the full-capacity buffers),
// the final norm and lm_head. Columns not yet written are masked to exactly
// zero probability (and zeroed, so no stale NaN gets near them), so the logits
// equal the eager path's up to float reassociation.
class DecodeGraph {
 public:
  // `cache` holds the prefill of a generate call that needs `steps` decode
  // steps; its buffers must have room for them.
  DecodeGraph(const Llama& model, KvCache& cache, long steps)
      : model_(model),
        cache_(cache),
        device_index_(model.device_.has_index() ? model.device_.index() : c10::cuda::current_device()) {
    B_ = cache.mask.size(0);
    column_ = cache.mask.size(1);
    C_ = cache.k.empty() || !cache.k[0].defined() ? 0 : cache.k[0].size(2);
    for (std::size_t l = 0; l < cache.k.size(); ++l) {
      if (!cache.k[l].defined() || !cache.v[l].defined() || cache.k[l].size(2) != C_ || cache.v[l].size(2) != C_)
        throw Error("decode graph: the K/V cache of layer " + std::to_string(l) + " is not allocated at capacity " +
                    std::to_string(C_));
    }
    if (column_ + steps > C_)
      throw Error(fmt::format("decode graph: {} cached + {} decode tokens exceed the K/V capacity {}", column_,
                              steps, C_));
    c10::cuda::CUDAGuard device_guard(device_index_);
    for (std::size_t l = 0; l < cache.k.size(); ++l) {
      cache.k[l].narrow(2, column_, C_ - column_).zero_();
      cache.v[l].narrow(2, column_, C_ - column_).zero_();
    }
    const auto i64 = torch::dtype(torch::kInt64).device(model.device_);
    real_ = torch::zeros({B_, C_}, i64);
    real_.narrow(1, 0, column_).copy_(cache.mask);
    // [ids (B) | position ids (B) | mask (B) | cache column (1)], rewritten in place every step.
    inputs_ = torch::zeros({3 * B_ + 1}, i64);
    ids_ = inputs_.narrow(0, 0, B_).view({B_, 1});
    positions_ = inputs_.narrow(0, B_, B_).view({B_, 1});
    mask_ = inputs_.narrow(0, 2 * B_, B_).view({B_, 1});
    column_index_ = inputs_.narrow(0, 3 * B_, 1);
    const auto next = cache.next_position.to(torch::kCPU).contiguous();
    next_position_.assign(next.data_ptr<std::int64_t>(), next.data_ptr<std::int64_t>() + B_);
  }

  long batch() const { return B_; }
  long capacity() const { return C_; }
  bool captured() const { return graph_ != nullptr; }
  double setup_seconds() const { return setup_seconds_; }

  // One decode step for the new tokens `ids` (mask 1 real, 0 padding for a
  // finished sequence): captures the graph on the first call, then replays it.
  // Returns fp32 logits [B, 1, V], owned by the graph: valid until the next step.
  torch::Tensor step(const std::vector<int>& ids, const std::vector<std::int64_t>& mask) {
    std::vector<std::int64_t> host(static_cast<std::size_t>(3 * B_ + 1));
    for (long b = 0; b < B_; ++b) {
      const auto i = static_cast<std::size_t>(b);
      host[i] = ids[i];
      // The eager path's position ids for T = 1: the next position for a real token, 1 for padding.
      host[static_cast<std::size_t>(B_) + i] = mask[i] != 0 ? next_position_[i] : 1;
      host[static_cast<std::size_t>(2 * B_) + i] = mask[i];
      next_position_[i] += mask[i];
    }
    host.back() = column_;
    c10::cuda::CUDAGuard device_guard(device_index_);
    // From pageable memory: returns once the copy is done (`host` can go).
    inputs_.copy_(torch::from_blob(host.data(), {3 * B_ + 1}, torch::kInt64));
    if (!graph_) capture();
    graph_->replay();  // on the current stream, like the copy above and whatever reads the logits
    ++column_;
    return logits_;
  }

 private:
  // The step itself, reading only the static buffers: what the graph records.
  torch::Tensor body() {
    real_.index_copy_(1, column_index_, mask_);  // the new tokens join the attention mask
    const auto [cos, sin] = model_.rope(positions_);
    const auto bias = model_.attention_bias(real_, column_index_.view({1, 1}));  // [B, 1, 1, C]
    auto h = model_.layers(model_.embed(ids_), cos, sin, bias,
                           [this](std::size_t l, const torch::Tensor& k, const torch::Tensor& v) {
                             // The column is read from the device at replay time.
                             cache_.k[l].index_copy_(2, column_index_, k);
                             cache_.v[l].index_copy_(2, column_index_, v);
                             return std::make_pair(cache_.k[l], cache_.v[l]);  // [B, K, C, D]
                           });
    return model_.head(h);
  }

  // Warms the step up eagerly on a side stream, then captures it there (CUDA
  // graphs are captured on a non-default stream; the replays can run on any).
  void capture() {
    const auto began = std::chrono::steady_clock::now();
    auto current = c10::cuda::getCurrentCUDAStream(device_index_);
    auto side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_index_);
    current.synchronize();  // the cache and this step's inputs, written on `current`, are ready for `side`
    {
      c10::cuda::CUDAStreamGuard on_side(side);
      // The warm-up (as PyTorch requires before a capture: cuBLAS handles and
      // workspaces for this stream, lazy initialisations) computes this very
      // step; the replay below writes the same K/V column again.
      body();
      auto graph = std::make_unique<at::cuda::CUDAGraph>();
      graph->capture_begin();
      try {
        logits_ = body();
      } catch (...) {
        // End the capture so that `side`, a pooled stream, is usable again;
        // the capture is invalid anyway, so capture_end's own error is moot.
        try {
          graph->capture_end();
        } catch (...) {
        }
        throw;
      }
      graph->capture_end();
      graph_ = std::move(graph);
      side.synchronize();  // the warm-up's writes land before the replay on `current`
    }
    setup_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  }

  const Llama& model_;
  KvCache& cache_;
  c10::DeviceIndex device_index_;
  long B_ = 0, C_ = 0;
  long column_ = 0;                          // cache column of the next step's tokens
  std::vector<std::int64_t> next_position_;  // per sequence, as KvCache::next_position
  torch::Tensor real_;                       // [B, C] 1 = real token in that column
  torch::Tensor inputs_, ids_, positions_, mask_, column_index_;
  torch::Tensor logits_;                     // [B, 1, V] fp32, written by every replay
  std::unique_ptr<at::cuda::CUDAGraph> graph_;
  double setup_seconds_ = 0;
};
#endif  // SENSECF_CUDA_GRAPHS

// Next token from one row of logits: greedy, or temperature -> top-k -> top-p
// (transformers' order) and a draw from our own seeded stream, so that a seed
// gives the same text on any device.
int pick(const torch::Tensor& row, const GenerationOptions& o, Rng& rng) {
  if (o.temperature <= 0) return static_cast<int>(row.argmax().item<std::int64_t>());
  auto logits = row.to(torch::kFloat64) / o.temperature;
  const long V = logits.size(0);
  if (o.top_k > 0 && o.top_k < V) {
    const auto kth = std::get<0>(logits.topk(o.top_k)).min();
    logits = logits.masked_fill(logits < kth, -std::numeric_limits<double>::infinity());
  }
  auto probs = torch::softmax(logits, 0);
  if (o.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose mass reaches top_p.
    const auto sorted = probs.sort(0, /*descending=*/true);
    const auto values = std::get<0>(sorted), index = std::get<1>(sorted);
    const auto before = values.cumsum(0) - values;  // mass of the tokens ranked above
    const auto drop = before >= o.top_p;
    probs = probs.index_put({index.masked_select(drop)}, torch::zeros({1}, probs.options()));
    probs = probs / probs.sum();
  }
  const auto p = probs.to(torch::kCPU).contiguous();
  const double* data = p.data_ptr<double>();
  double u = rng.uniform(), acc = 0;
  for (long i = 0; i < V; ++i) {
    acc += data[i];
    if (u < acc) return static_cast<int>(i);
  }
  return static_cast<int>(V - 1);
}

}  // namespace

std::unique_ptr<CausalLM> CausalLM::load(const std::string& dir, const ModelOptions& options) {
  const torch::Device device(options.device);
  const auto dtype = parse_dtype(options.dtype, device);
  const auto graph = parse_cuda_graph(options.cuda_graph, device);
  if (options.merge_adapter && options.adapter.empty())
    throw UsageError("merge_adapter is set without an adapter", "pass --adapter DIR, or drop --merge-adapter");
  ModelConfig config = load_config(dir);
  // The adapter is read and checked first: a mismatch is reported before the
  // (possibly 16 GB) base weights are loaded.
  LoraAdapter adapter;
  if (!options.adapter.empty()) adapter = load_lora_adapter(options.adapter, config, device);
  auto weights = load_weights(dir, dtype, device);
  check_weights(config, weights);
  auto model = std::make_unique<Llama>(std::move(config), std::move(weights), device, dtype,
                                      parse_attention(options.attention), graph);
  if (!options.adapter.empty()) model->attach(adapter, options.merge_adapter);
  return model;
}

std::unique_ptr<CausalLM> CausalLM::random(const ModelConfig& config, const ModelOptions& options,
                                           std::uint64_t seed) {
  if (!options.adapter.empty()) throw UsageError("CausalLM::random takes no adapter");
  const torch::Device device(options.device);
  const auto dtype = parse_dtype(options.dtype, device);
  config.validate("random model config");
  const auto graph = parse_cuda_graph(options.cuda_graph, device);
  return std::make_unique<Llama>(config, random_weights(config, dtype, device, seed), device, dtype,
                                 parse_attention(options.attention), graph);
}

std::vector<std::vector<int>> generate(const CausalLM& base, const std::vector<std::vector<int>>& prompts,
                                       const GenerationOptions& o, int pad_id) {
  const auto* model = dynamic_cast<const Llama*>(&base);
  if (!model) throw Error("generate: unsupported model implementation");
  torch::NoGradGuard no_grad;
  const auto B = static_cast<long>(prompts.size());
  std::size_t longest = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw UsageError("generate: an empty prompt", "every prompt needs at least one token (e.g. BOS)");
    longest = std::max(longest, p.size());
  }
  // Left padding: every sequence's last prompt token sits in the same column.
  std::vector<std::vector<int>> padded;
  std::vector<std::int64_t> mask;
  for (const auto& p : prompts) {
    std::vector<int> row(longest - p.size(), pad_id);
    row.insert(row.end(), p.begin(), p.end());
    padded.push_back(row);
    for (std::size_t i = 0; i < longest; ++i) mask.push_back(i >= longest - p.size() ? 1 : 0);
  }
  KvCache cache = model->empty_cache(B, static_cast<long>(longest) + std::max(o.max_new_tokens, 0));
  auto logits = model->forward(model->ids_tensor(padded),
                               torch::tensor(mask, torch::kInt64).view({B, static_cast<long>(longest)}), cache,
                               /*last_only=*/true);
  std::vector<std::vector<int>> out(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  std::vector<Rng> rngs;
  for (long b = 0; b < B; ++b) rngs.emplace_back(derive_seed(o.seed, "generate/" + std::to_string(b)));

  // The decode steps (all but the first new token) as a replayed CUDA graph, or eagerly.
  const long decode_steps = std::max(o.max_new_tokens - 1, 0);
  std::string eager_reason = model->graph_.off_reason;
  if (eager_reason.empty() && decode_steps == 0) eager_reason = "no decode steps";
  if (eager_reason.empty() && model->graph_failed_)
    eager_reason = "a CUDA graph capture failed earlier in this process (see the warning then)";
  bool try_graph = eager_reason.empty();
  if (!try_graph) spdlog::debug("decode: eager ({})", eager_reason);
#if SENSECF_CUDA_GRAPHS
  std::unique_ptr<DecodeGraph> graph;
#endif
  int steps_run = 0;

  for (int step = 0; step < o.max_new_tokens; ++step) {
    // One device-to-host transfer per step: the greedy choices, or the rows to sample from.
    const auto last = logits.select(1, logits.size(1) - 1);  // [B, V]
    const auto greedy = o.temperature <= 0 ? last.argmax(1).to(torch::kCPU) : torch::Tensor();
    const auto rows = o.temperature <= 0 ? torch::Tensor() : last.to(torch::kCPU);
    std::vector<int> next(prompts.size(), pad_id);
    std::vector<std::int64_t> next_mask(prompts.size(), 0);
    for (long b = 0; b < B; ++b) {
      const auto i = static_cast<std::size_t>(b);
      if (done[i]) continue;
      next[i] = o.temperature <= 0 ? static_cast<int>(greedy[b].item<std::int64_t>()) : pick(rows[b], o, rngs[i]);
      next_mask[i] = 1;
      out[i].push_back(next[i]);
      bool stop = std::find(o.stop_ids.begin(), o.stop_ids.end(), next[i]) != o.stop_ids.end();
      if (o.on_token && !o.on_token(i, next[i])) stop = true;
      if (!stop && !o.stop_strings.empty() && o.decode) {
        const auto text = o.decode(out[i]);
        for (const auto& s : o.stop_strings) stop = stop || text.find(s) != std::string::npos;
      }
      done[i] = stop;
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }) || step + 1 == o.max_new_tokens) break;
    ++steps_run;
    // Finished sequences feed padding (masked) so the batch stays rectangular.
#if SENSECF_CUDA_GRAPHS
    if (try_graph) {
      try {
        if (!graph) graph = std::make_unique<DecodeGraph>(*model, cache, decode_steps);
        const bool first = !graph->captured();
        logits = graph->step(next, next_mask);
        if (first)
          spdlog::debug("decode: CUDA graph captured for B={}, C={} (warm-up + capture {:.1f} ms)", graph->batch(),
                        graph->capacity(), 1e3 * graph->setup_seconds());
        continue;
      } catch (const std::exception& e) {
        if (graph && graph->captured()) throw;  // a replay failed: no capture problem, nothing to fall back on
        // Nothing of this step has been read yet and the cache's own mask and
        // positions are untouched: the eager step below computes it afresh
        // (rewriting the K/V column the warm-up may have written).
        graph.reset();
        try_graph = false;
        model->graph_failed_ = true;
        const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
        eager_reason = "CUDA graph capture failed: " + (torch_error ? torch_error->what_without_backtrace()
                                                                    : std::string(e.what()));
        spdlog::warn("decode: {}; decoding eagerly from here on", eager_reason);
      }
    }
#endif
    std::vector<std::vector<int>> column;
    for (int t : next) column.push_back({t});
    logits = model->forward(model->ids_tensor(column), torch::tensor(next_mask, torch::kInt64).view({B, 1}), cache,
                            /*last_only=*/true);
  }

  if (o.stats) {
    bool graph_ran = false;
#if SENSECF_CUDA_GRAPHS
    graph_ran = graph && graph->captured();
    o.stats->graph_setup_s = graph_ran ? graph->setup_seconds() : 0;
#else
    o.stats->graph_setup_s = 0;
#endif
    o.stats->decode_path = graph_ran ? "cuda-graph" : "eager";
    o.stats->eager_reason = graph_ran ? "" : (eager_reason.empty() ? "no decode steps" : eager_reason);
    o.stats->decode_steps = steps_run;
  }
  return out;
}

}  // namespace sensecf::llm
