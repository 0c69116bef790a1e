// Llama / Mistral forward pass and generation in LibTorch (see model.h).
//
// Shapes: B batch, T new tokens, S cached + new tokens, H query heads, K kv
// heads, D head dim, E hidden size, V vocabulary. The seven projections of a
// layer are LoraLinear (lora.h): a plain x W^T until an adapter is attached.
#include "sensecf/llm/model.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

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

torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

class Llama final : public CausalLM {
 public:
  Llama(ModelConfig config, std::map<std::string, torch::Tensor> weights, torch::Device device,
        torch::ScalarType dtype, bool sdpa)
      : config_(std::move(config)), device_(device), dtype_(dtype), sdpa_(sdpa) {
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
    const long B = ids.size(0), T = ids.size(1);
    const long H = config_.num_attention_heads, K = config_.num_key_value_heads, D = config_.head_dim;
    const auto mask_new = new_mask.to(device_);
    // Position ids as transformers derives them from the attention mask:
    // cumulative count of real tokens - 1 (padding gets 1, it is masked anyway).
    auto positions = cache.next_position.unsqueeze(1) + mask_new.cumsum(1) - 1;  // [B, T]
    positions = positions.masked_fill(mask_new == 0, 1);
    cache.next_position = cache.next_position + mask_new.sum(1);
    const long start = cache.mask.size(1);               // tokens already cached
    cache.mask = torch::cat({cache.mask, mask_new}, 1);  // [B, S]
    const long S = cache.mask.size(1);

    // RoPE in fp32 (transformers disables autocast there), then cast.
    const auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.view({1, 1, -1});  // [B, T, D/2]
    const auto emb = torch::cat({freqs, freqs}, -1);
    const auto cos = emb.cos().to(dtype_).unsqueeze(1);  // [B, 1, T, D]
    const auto sin = emb.sin().to(dtype_).unsqueeze(1);

    // Additive mask [B, 1, T, S]: key j visible to query i iff j is a real token,
    // j <= i (causal, in cache indices) and, with a sliding window W, j > i - W.
    const auto q_index = torch::arange(S - T, S, torch::dtype(torch::kInt64).device(device_)).view({T, 1});
    const auto k_index = torch::arange(0, S, torch::dtype(torch::kInt64).device(device_)).view({1, S});
    auto allowed = (k_index <= q_index).unsqueeze(0) & (cache.mask.unsqueeze(1) != 0);  // [B, T, S]
    if (config_.sliding_window > 0) {
      // In positions, not cache indices: left padding shifts them equally, so the difference is the same.
      allowed = allowed & (k_index > q_index - config_.sliding_window).unsqueeze(0);
    }
    const double min_value = dtype_ == torch::kFloat32 ? std::numeric_limits<float>::lowest()
                                                       : (dtype_ == torch::kFloat16 ? -65504.0 : -3.3895e38);
    const auto bias = torch::zeros({B, 1, T, S}, torch::dtype(dtype_).device(device_))
                          .masked_fill(allowed.logical_not().unsqueeze(1), min_value);

    auto h = embed_.index_select(0, ids.reshape(-1)).view({B, T, -1});
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    // Grouped-query attention without copying kv heads: query head h = k * G + g
    // uses kv head k (transformers' repeat_kv order), so the G query heads of a
    // kv head are stacked along the rows: q [B, K, G*T, D] against k [B, K, S, D].
    const long G = H / K;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const auto& w = layers_[l];
      const auto x = rms_norm(h, w.input_norm);
      auto q = w.q.forward(x).view({B, T, H, D}).transpose(1, 2);
      auto k = w.k.forward(x).view({B, T, K, D}).transpose(1, 2);
      auto v = w.v.forward(x).view({B, T, K, D}).transpose(1, 2);
      q = q * cos + rotate_half(q) * sin;
      k = k * cos + rotate_half(k) * sin;
      const auto [keys, values] = cache.append(l, k, v, start);  // [B, K, S, D]
      const auto grouped = q.reshape({B, K, G * T, D});
      torch::Tensor context;  // [B, K, G*T, D]
      if (sdpa_) {
        context = sdpa(grouped, keys, values, bias.unsqueeze(2).expand({B, 1, G, T, S}).reshape({B, 1, G * T, S}));
      } else {
        // transformers' eager attention: softmax in fp32, then back to the model dtype.
        const auto scores = torch::matmul(grouped, keys.transpose(2, 3)).view({B, K, G, T, S}) * scale +
                            bias.unsqueeze(2);  // [B, K, G, T, S]
        const auto probs = torch::softmax(scores, -1, torch::kFloat32).to(dtype_).view({B, K, G * T, S});
        context = torch::matmul(probs, values);
      }
      const auto attn = context.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
      h = h + w.o.forward(attn);
      const auto y = rms_norm(h, w.post_norm);
      const auto gate = w.gate.forward(y);
      h = h + w.down.forward(gate * torch::sigmoid(gate) * w.up.forward(y));
    }
    if (last_only) h = h.narrow(1, T - 1, 1);
    h = rms_norm(h, norm_);
    return torch::matmul(h, lm_head_.t()).to(torch::kFloat32);
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

  friend std::vector<std::vector<int>> llm::generate(const CausalLM&, const std::vector<std::vector<int>>&,
                                                     const GenerationOptions&, int);
};

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
  if (options.merge_adapter && options.adapter.empty())
    throw UsageError("merge_adapter is set without an adapter", "pass --adapter DIR, or drop --merge-adapter");
  ModelConfig config = load_config(dir);
  // The adapter is read and checked first: a mismatch is reported before the
  // (possibly 16 GB) base weights are loaded.
  LoraAdapter adapter;
  if (!options.adapter.empty()) adapter = load_lora_adapter(options.adapter, config, device);
  auto weights = load_weights(dir, dtype, device);
  check_weights(config, weights);
  auto model =
      std::make_unique<Llama>(std::move(config), std::move(weights), device, dtype, parse_attention(options.attention));
  if (!options.adapter.empty()) model->attach(adapter, options.merge_adapter);
  return model;
}

std::unique_ptr<CausalLM> CausalLM::random(const ModelConfig& config, const ModelOptions& options,
                                           std::uint64_t seed) {
  if (!options.adapter.empty()) throw UsageError("CausalLM::random takes no adapter");
  const torch::Device device(options.device);
  const auto dtype = parse_dtype(options.dtype, device);
  config.validate("random model config");
  return std::make_unique<Llama>(config, random_weights(config, dtype, device, seed), device, dtype,
                                 parse_attention(options.attention));
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
    std::vector<std::vector<int>> column;
    for (int t : next) column.push_back({t});
    // Finished sequences feed padding (masked) so the batch stays rectangular.
    logits = model->forward(model->ids_tensor(column), torch::tensor(next_mask, torch::kInt64).view({B, 1}), cache,
                            /*last_only=*/true);
  }
  return out;
}

}  // namespace sensecf::llm
