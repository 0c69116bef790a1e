// The Llama / Mistral forward pass in LibTorch (see decoder.h); generate and
// its CUDA-graph decode step are generation.cpp.
//
// Shapes: B batch, T new tokens, S cached + new tokens, H query heads, K kv
// heads, D head dim, E hidden size, V vocabulary. The seven projections of a
// layer are LoraLinear (lora.h): a plain x W^T until an adapter is attached.
#include "sensecf/llm/model/decoder.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>

#include "decoding.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/model/tiny.h"

namespace sensecf::llm {
namespace {

// LibTorch 2 has a fused scaled_dot_product_attention (flash / memory-efficient
// kernels on CUDA); LibTorch 1.13 (Debian's) does not.
#if TORCH_VERSION_MAJOR >= 2
constexpr bool kHaveSdpa = true;
#else
constexpr bool kHaveSdpa = false;
#endif

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
  if (name == "float64") return torch::kFloat64;  // numerical checks; not a CLI choice
  throw UsageError("unknown dtype '" + name + "'", "use auto, float32, bfloat16 or float16");
}

// lm.device as a torch::Device this process can use: "cpu", "cuda" or "cuda:N"
// with N below the number of visible GPUs.
torch::Device parse_device(const std::string& name) {
  check_device_name(name);
  const torch::Device device(name);
  if (!device.is_cuda()) return device;
  if (!torch::cuda::is_available()) {
    throw UsageError("lm.device = " + name + ", but " +
                         (SENSECF_CUDA_GRAPHS ? std::string("no CUDA GPU is visible to this process")
                                              : std::string("this build uses a LibTorch without CUDA (" TORCH_VERSION ")")),
                     "use --device cpu, or run on a GPU node with a CUDA build (docs/gpu.md); "
                     "check CUDA_VISIBLE_DEVICES and nvidia-smi");
  }
  const auto n = static_cast<int>(torch::cuda::device_count());
  if (device.has_index() && device.index() >= n) {
    throw UsageError(fmt::format("lm.device = {}, but this process sees {} GPU{} (cuda:0{})", name, n, n == 1 ? "" : "s",
                                 n > 1 ? " to cuda:" + std::to_string(n - 1) : ""),
                     "pick a visible GPU; CUDA_VISIBLE_DEVICES renumbers them from 0");
  }
  return device;
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

torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& bias) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, bias, /*dropout_p=*/0.0, /*is_causal=*/false);
#else
  (void)q, (void)k, (void)v, (void)bias;
  throw Error("scaled_dot_product_attention needs LibTorch >= 2.0");
#endif
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> KvCache::append(std::size_t l, const torch::Tensor& key,
                                                        const torch::Tensor& value, long start) {
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

// --- construction and LoRA ---------------------------------------------------

Decoder::Decoder(ModelConfig config, const WeightMap& weights, const ModelOptions& options)
    : config_(std::move(config)),
      device_(options.device),
      dtype_(parse_dtype(options.dtype, device_)),
      compute_(dtype_ == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32),
      sdpa_(parse_attention(options.attention)) {
  const GraphChoice graph = parse_cuda_graph(options.cuda_graph, device_);
  graph_on_ = graph.on;
  graph_off_reason_ = graph.off_reason;
  auto take = [&](const std::string& name) {
    const auto it = weights.find(name);
    if (it == weights.end()) throw Error("checkpoint lacks tensor '" + name + "'");
    return it->second.detach().to(device_, dtype_).contiguous();  // frozen: never part of a graph
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
  if (options.quant != "none") quantize_projections(options.quant);
  const auto inv = rope_inv_freq(config_);
  inv_freq_ = torch::tensor(inv, torch::kFloat32).to(device_);
}

Decoder::~Decoder() = default;

std::unique_ptr<Decoder> Decoder::load(const std::string& dir, const ModelOptions& options) {
  const torch::Device device = parse_device(options.device);
  const auto dtype = parse_dtype(options.dtype, device);
  parse_cuda_graph(options.cuda_graph, device);
  if (options.merge_adapter && options.adapter.empty())
    throw UsageError("merge_adapter is set without an adapter", "pass --adapter DIR, or drop --merge-adapter");
  ModelConfig config = load_config(dir);
  // The adapter is read and checked first: a mismatch is reported before the
  // (possibly 16 GB) base weights are loaded.
  LoraAdapter adapter;
  if (!options.adapter.empty()) adapter = load_lora_adapter(options.adapter, config, device);
  auto weights = load_weights(dir, dtype, device);
  check_weights(config, weights);
  auto model = std::make_unique<Decoder>(std::move(config), weights, options);
  weights.clear();  // the decoder holds the tensors now
  if (!options.adapter.empty()) model->attach(adapter, options.merge_adapter);
  return model;
}

std::unique_ptr<Decoder> Decoder::random(const ModelConfig& config, const ModelOptions& options, std::uint64_t seed) {
  if (!options.adapter.empty()) throw UsageError("CausalLM::random takes no adapter");
  const torch::Device device = parse_device(options.device);
  const auto dtype = parse_dtype(options.dtype, device);
  config.validate("random model config");
  parse_cuda_graph(options.cuda_graph, device);
  return std::make_unique<Decoder>(config, random_weights(config, dtype, device, seed), options);
}

std::unique_ptr<CausalLM> CausalLM::load(const std::string& dir, const ModelOptions& options) {
  return Decoder::load(dir, options);
}

std::unique_ptr<CausalLM> CausalLM::random(const ModelConfig& config, const ModelOptions& options,
                                           std::uint64_t seed) {
  return Decoder::random(config, options, seed);
}

std::size_t Decoder::element_size() const { return c10::elementSize(dtype_); }

const LoraLinear& Decoder::projection(const LoraModule& m) const {
  if (m.layer < 0 || m.layer >= static_cast<std::int64_t>(layers_.size()))
    throw Error("LoRA module " + m.name + ": no layer " + std::to_string(m.layer));
  const Layer& l = layers_[static_cast<std::size_t>(m.layer)];
  const std::map<std::string, const LoraLinear*> by_kind = {{"q_proj", &l.q},       {"k_proj", &l.k},
                                                            {"v_proj", &l.v},       {"o_proj", &l.o},
                                                            {"gate_proj", &l.gate}, {"up_proj", &l.up},
                                                            {"down_proj", &l.down}};
  const auto it = by_kind.find(m.kind);
  if (it == by_kind.end()) throw Error("LoRA module " + m.name + ": unknown projection '" + m.kind + "'");
  return *it->second;
}

LoraLinear& Decoder::projection(const LoraModule& m) {
  return const_cast<LoraLinear&>(static_cast<const Decoder&>(*this).projection(m));
}

void Decoder::attach(const LoraAdapter& adapter, bool merge) {
  if (!adapter_modules_.empty())
    throw Error("the model already has an adapter (" + describe_lora(adapter_modules_) + ")",
                "a decoder takes one adapter; load the model again for another");
  torch::NoGradGuard no_grad;  // a merge folds plain numbers into the weights
  for (const auto& m : adapter.modules) {
    LoraLinear& linear = projection(m);
    const auto& [A, B] = adapter.weights.at(m.name);
    // Copies: the decoder owns the tensors it may train.
    linear.lora_A = A.detach().to(device_, compute_, /*non_blocking=*/false, /*copy=*/true).contiguous();
    linear.lora_B = B.detach().to(device_, compute_, /*non_blocking=*/false, /*copy=*/true).contiguous();
    linear.scaling = m.scaling;
    if (merge) linear.merge();
  }
  adapter_modules_ = adapter.modules;
  adapter_merged_ = merge;
}

std::vector<std::pair<std::string, torch::Tensor>> Decoder::lora_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (adapter_merged_) return out;
  for (const auto& m : adapter_modules_) {
    const LoraLinear& linear = projection(m);
    out.emplace_back(lora_tensor_name(m.name, 'A'), linear.lora_A);
    out.emplace_back(lora_tensor_name(m.name, 'B'), linear.lora_B);
  }
  return out;
}

void Decoder::merge_adapter() {
  if (adapter_modules_.empty() || adapter_merged_)
    throw Error("merge_adapter: the model has " + std::string(adapter_merged_ ? "its adapter merged for good" : "no adapter"));
  for (const auto& m : adapter_modules_) projection(m).fold_in();
  adapter_folded_ = true;
}

void Decoder::unmerge_adapter() {
  if (adapter_modules_.empty() || adapter_merged_)
    throw Error("unmerge_adapter: the model has " +
                    std::string(adapter_merged_ ? "its adapter merged for good (A and B were dropped)" : "no adapter"),
                "attach the adapter unmerged to merge and unmerge it later");
  for (const auto& m : adapter_modules_) projection(m).fold_out();
  adapter_folded_ = false;
}

void Decoder::set_lora_trainable(bool trainable) {
  if (adapter_modules_.empty() || adapter_merged_)
    throw Error(std::string("set_lora_trainable: the model has ") +
                    (adapter_merged_ ? "its adapter merged into the weights" : "no adapter"),
                "attach an adapter unmerged (attach(adapter, /*merge=*/false))");
  if (adapter_folded_)
    throw Error("set_lora_trainable: the adapter is merged into the weights", "call unmerge_adapter() first");
  for (auto& [name, tensor] : lora_parameters()) tensor.requires_grad_(trainable);
}

void Decoder::quantize_projections(const std::string& quant) {
  if (quant != "nf4" && quant != "nf4-dq")
    throw UsageError("unknown quantisation '" + quant + "'", "use none, nf4 or nf4-dq");
  std::size_t dense = 0, packed = 0;
  for (auto& layer : layers_) {
    for (LoraLinear* linear : {&layer.q, &layer.k, &layer.v, &layer.o, &layer.gate, &layer.up, &layer.down}) {
      dense += static_cast<std::size_t>(linear->weight.nbytes());
      auto w = std::make_shared<Nf4Weight>(quantize_nf4(linear->weight, 64, quant == "nf4-dq"));
      packed += w->bytes();
      linear->nf4 = std::move(w);
      linear->weight = torch::Tensor();  // the dense copy goes
    }
  }
  quant_ = quant;
  const double layers = static_cast<double>(std::max<std::size_t>(1, layers_.size()));
  spdlog::info("{}: projection weights {:.2f} MiB -> {:.2f} MiB per layer ({:.3f} bits per weight)", quant,
               static_cast<double>(dense) / layers / 1048576.0, static_cast<double>(packed) / layers / 1048576.0,
               8.0 * static_cast<double>(packed) /
                   (static_cast<double>(dense) / static_cast<double>(c10::elementSize(dtype_))));
}

void Decoder::set_lora_dropout(double p) {
  if (!(p >= 0 && p < 1)) throw UsageError(fmt::format("lora dropout must be in [0, 1), got {}", p));
  for (const auto& m : adapter_modules_) projection(m).dropout = p;
}

std::vector<std::pair<std::string, torch::Tensor>> Decoder::base_weights() const {
  std::vector<std::pair<std::string, torch::Tensor>> out = {{"model.embed_tokens.weight", embed_}};
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    const Layer& l = layers_[i];
    out.emplace_back(p + "input_layernorm.weight", l.input_norm);
    out.emplace_back(p + "self_attn.q_proj.weight", l.q.weight);
    out.emplace_back(p + "self_attn.k_proj.weight", l.k.weight);
    out.emplace_back(p + "self_attn.v_proj.weight", l.v.weight);
    out.emplace_back(p + "self_attn.o_proj.weight", l.o.weight);
    out.emplace_back(p + "post_attention_layernorm.weight", l.post_norm);
    out.emplace_back(p + "mlp.gate_proj.weight", l.gate.weight);
    out.emplace_back(p + "mlp.up_proj.weight", l.up.weight);
    out.emplace_back(p + "mlp.down_proj.weight", l.down.weight);
  }
  out.emplace_back("model.norm.weight", norm_);
  if (!config_.tie_word_embeddings) out.emplace_back("lm_head.weight", lm_head_);
  // NF4 projections hold no dense tensor: they are not listed.
  out.erase(std::remove_if(out.begin(), out.end(), [](const auto& e) { return !e.second.defined(); }), out.end());
  return out;
}

// --- forward -----------------------------------------------------------------

std::vector<float> Decoder::logits(const std::vector<int>& ids) const {
  torch::NoGradGuard no_grad;
  const auto out = forward(ids_tensor({ids}), torch::ones({1, static_cast<long>(ids.size())}, torch::kInt64));
  check_finite_logits(out);
  return to_vector(out[0]);
}

void Decoder::check_finite_logits(const torch::Tensor& logits) const {
  if (torch::isfinite(logits).all().item<bool>()) return;
  // Name the first weight that is not finite: the usual cause.
  std::vector<std::pair<std::string, torch::Tensor>> tensors = base_weights();
  for (auto& named : lora_parameters()) tensors.push_back(std::move(named));
  for (const auto& [name, t] : tensors) {
    if (t.defined() && t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) {
      throw Error("the model computed NaN or infinite logits: weight '" + name + "' holds NaN or infinite values",
                  "the checkpoint or adapter is damaged or came from a diverged run; restore it from a copy or "
                  "use another checkpoint");
    }
  }
  throw Error(fmt::format("the model computed NaN or infinite logits although every weight is finite (dtype {})",
                          c10::toString(dtype_)),
              dtype_ == torch::kFloat16 ? "float16 overflows easily: try --dtype bfloat16 or float32"
                                        : "try --dtype float32; if that fails too, the checkpoint's values are "
                                          "extreme");
}

std::vector<float> Decoder::logits_incremental(const std::vector<int>& ids) const {
  torch::NoGradGuard no_grad;
  KvCache cache = empty_cache(1);
  std::vector<torch::Tensor> rows;
  for (int id : ids) {
    rows.push_back(forward(ids_tensor({{id}}), torch::ones({1, 1}, torch::kInt64), cache)[0]);
  }
  return to_vector(torch::cat(rows, 0));
}

torch::Tensor Decoder::forward(const torch::Tensor& ids, const torch::Tensor& mask) const {
  // The cache path from an empty cache: the same operations as generate's
  // prefill. Under grad mode its buffers take part in the graph like any copy.
  KvCache cache = empty_cache(ids.size(0));
  return forward(ids.to(device_, torch::kInt64), mask, cache);
}

KvCache Decoder::empty_cache(long batch, long reserve) const {
  KvCache c;
  c.k.resize(static_cast<std::size_t>(config_.num_hidden_layers));
  c.v.resize(c.k.size());
  c.reserved = reserve;
  c.mask = torch::zeros({batch, 0}, torch::dtype(torch::kInt64).device(device_));
  c.next_position = torch::zeros({batch}, torch::dtype(torch::kInt64).device(device_));
  return c;
}

torch::Tensor Decoder::ids_tensor(const std::vector<std::vector<int>>& rows) const {
  std::vector<std::int64_t> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const auto vocab = static_cast<std::int64_t>(config_.vocab_size);
  for (std::size_t i = 0; i < flat.size(); ++i) {
    if (flat[i] < 0 || flat[i] >= vocab) {
      const std::size_t width = rows.empty() ? 1 : std::max<std::size_t>(flat.size() / rows.size(), 1);
      throw Error(fmt::format("token id {} (sequence {}, position {}) is outside the model's vocabulary: ids run "
                              "from 0 to {} (config.json vocab_size {})",
                              flat[i], i / width, i % width, vocab - 1, vocab),
                  "were the ids made by another model's tokenizer? Give text instead, or ids from this model's "
                  "tokenizer.json (`sensecf lm tokenize`)");
    }
  }
  return torch::tensor(flat, torch::kInt64).view({static_cast<long>(rows.size()), -1}).to(device_);
}

// ids [B, T]; mask [B, T] (1 real, 0 left padding) for the new tokens.
// Returns logits [B, T, V] (or [B, 1, V] for the last position only, which is
// all generation needs: at 8B shapes the full prefill logits are gigabytes)
// and extends the cache.
torch::Tensor Decoder::forward(const torch::Tensor& ids, const torch::Tensor& new_mask, KvCache& cache,
                               bool last_only) const {
  auto h = hidden(ids, new_mask, cache);
  if (last_only) h = h.narrow(1, h.size(1) - 1, 1);
  return head(h);
}

torch::Tensor Decoder::forward_at(const torch::Tensor& ids, const torch::Tensor& mask, const torch::Tensor& rows,
                                  const torch::Tensor& cols) const {
  return head(hidden_at(ids, mask, rows, cols));  // [K, V]
}

torch::Tensor Decoder::hidden_at(const torch::Tensor& ids, const torch::Tensor& mask, const torch::Tensor& rows,
                                 const torch::Tensor& cols) const {
  KvCache cache = empty_cache(ids.size(0));
  const auto h = hidden(ids.to(device_, torch::kInt64), mask, cache);  // [B, T, H]
  return h.index({rows.to(device_, torch::kInt64), cols.to(device_, torch::kInt64)});
}

namespace {

// Sum over rows r of cross_entropy(x_r Wᵀ in `compute`, target_r) for a frozen
// W [V, H], `chunk` rows at a time. Forward also computes d(sum)/dx =
// (softmax - onehot) W chunk by chunk and keeps only that [K, H]; backward
// scales it by the incoming gradient. The [chunk, V] logits are the largest
// temporary. (No gradient is computed when x does not require one.)
class ChunkedHeadLoss : public torch::autograd::Function<ChunkedHeadLoss> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& targets, std::int64_t chunk,
                               c10::ScalarType compute) {
    const bool want_grad = x.requires_grad();
    const auto K = x.size(0);
    auto total = torch::zeros({}, x.options().dtype(compute));
    torch::Tensor grad = want_grad ? torch::empty_like(x) : torch::Tensor();
    for (std::int64_t start = 0; start < K; start += chunk) {
      const auto n = std::min(chunk, K - start);
      const auto t = targets.narrow(0, start, n).unsqueeze(1);
      // As cross_entropy computes it: nll of log_softmax, whose gradient is
      // softmax - onehot with softmax = exp(log_softmax).
      const auto log_probs = torch::log_softmax(torch::matmul(x.narrow(0, start, n), weight.t()).to(compute), 1);
      total -= log_probs.gather(1, t).sum();
      if (want_grad) {
        auto g = log_probs.exp();
        g.scatter_add_(1, t, torch::full({n, 1}, -1.0, g.options()));
        grad.narrow(0, start, n).copy_(torch::matmul(g.to(x.scalar_type()), weight));
      }
    }
    ctx->save_for_backward({grad});
    return total;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grads) {
    const auto grad = ctx->get_saved_variables()[0];
    return {grad * grads[0].to(grad.scalar_type()), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor Decoder::loss_sum_at(const torch::Tensor& ids, const torch::Tensor& mask, const torch::Tensor& rows,
                                   const torch::Tensor& cols, const torch::Tensor& targets,
                                   std::int64_t chunk_rows) const {
  if (chunk_rows < 1) throw Error("loss_sum_at: chunk_rows must be positive");
  const auto picked = hidden_at(ids, mask, rows, cols);  // [K, H]
  const auto y = targets.to(device_, torch::kInt64);
  if (picked.size(0) <= chunk_rows) {  // one chunk: the logits and cross_entropy under autograd, as forward_at
    return torch::nn::functional::cross_entropy(
        head(picked), y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  }
  return ChunkedHeadLoss::apply(rms_norm(picked, norm_).contiguous(), lm_head_, y, chunk_rows, compute_);
}

// The last layer's hidden states [B, T, H] (before the final norm) of new
// tokens; extends the cache.
// One decoder layer whose activations are not kept: forward runs without a
// graph; backward runs the layer again with one and backpropagates through it
// (the LoRA leaves get their gradients from that inner pass). The default
// generator of the device is set back to its state at forward time for the
// recomputation, so LoRA dropout draws the same masks twice.
class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& cos,
                               const torch::Tensor& sin, const torch::Tensor& bias, const Decoder* model,
                               std::int64_t layer) {
    ctx->save_for_backward({h, cos, sin, bias});
    ctx->saved_data["model"] = reinterpret_cast<std::int64_t>(model);
    ctx->saved_data["layer"] = layer;
    auto gen = at::globalContext().defaultGenerator(h.device());
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      ctx->saved_data["rng"] = gen.get_state();
    }
    return model->checkpoint_layer(static_cast<std::size_t>(layer), h, cos, sin, bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto* model = reinterpret_cast<const Decoder*>(ctx->saved_data["model"].toInt());
    const auto layer = static_cast<std::size_t>(ctx->saved_data["layer"].toInt());
    auto h = saved[0].detach().requires_grad_(true);
    auto gen = at::globalContext().defaultGenerator(h.device());
    torch::Tensor now;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      now = gen.get_state();
      gen.set_state(ctx->saved_data["rng"].toTensor());
    }
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = model->checkpoint_layer(layer, h, saved[1], saved[2], saved[3]);
    }
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(now);
    }
    torch::autograd::backward({out}, {grad[0]});
    return {h.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor Decoder::checkpoint_layer(std::size_t l, const torch::Tensor& h, const torch::Tensor& cos,
                                        const torch::Tensor& sin, const torch::Tensor& bias) const {
  // Training passes attend over their own keys only: no cache.
  return layer(l, h, cos, sin, bias, [](std::size_t, const torch::Tensor& k, const torch::Tensor& v) {
    return std::make_pair(k, v);
  });
}

void Decoder::set_gradient_checkpointing(bool on) { checkpointing_ = on; }

torch::Tensor Decoder::hidden(const torch::Tensor& ids, const torch::Tensor& new_mask, KvCache& cache) const {
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
  if (checkpointing_ && torch::GradMode::is_enabled() && start == 0) {
    // The frozen embedding's output must require grad, or the checkpointed
    // layers' outputs would not and their backward (the LoRA gradients) would
    // never run.
    auto h = embed(ids).detach().requires_grad_(true);
    for (std::size_t l = 0; l < layers_.size(); ++l)
      h = CheckpointedLayer::apply(h, cos, sin, bias, this, static_cast<std::int64_t>(l));
    return h;
  }
  auto h = layers(embed(ids), cos, sin, bias, [&cache, start](std::size_t l, const torch::Tensor& k,
                                                               const torch::Tensor& v) {
    return cache.append(l, k, v, start);  // the filled part [B, K, S, D]
  });
  return h;
}

// transformers' LlamaRMSNorm: in fp32, weight applied after casting back.
torch::Tensor Decoder::rms_norm(const torch::Tensor& x, const torch::Tensor& weight) const {
  const auto h = x.to(compute_);
  const auto normed = h * torch::rsqrt(h.pow(2).mean(-1, true) + config_.rms_norm_eps);
  return weight * normed.to(dtype_);
}

// RoPE cos and sin [B, 1, T, D] in the model dtype for position ids [B, T]:
// in fp32 (transformers disables autocast there), then cast.
std::pair<torch::Tensor, torch::Tensor> Decoder::rope(const torch::Tensor& positions) const {
  const auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.view({1, 1, -1});  // [B, T, D/2]
  const auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype_).unsqueeze(1), emb.sin().to(dtype_).unsqueeze(1)};
}

// Additive mask [B, 1, T, N] for queries at cache indices q_index [T, 1] (a
// device tensor) over N = real.size(1) key columns, real [B, N] (1 real
// token, 0 padding or not yet written): key j is visible to query i iff j is
// a real token, j <= i (causal) and, with a sliding window W, j > i - W;
// others get the dtype's lowest value, which softmax turns into exactly zero.
torch::Tensor Decoder::attention_bias(const torch::Tensor& real, const torch::Tensor& q_index) const {
  const long B = real.size(0), N = real.size(1), T = q_index.size(0);
  const auto k_index = torch::arange(0, N, torch::dtype(torch::kInt64).device(device_)).view({1, N});
  auto allowed = (k_index <= q_index).unsqueeze(0) & (real.unsqueeze(1) != 0);  // [B, T, N]
  if (config_.sliding_window > 0) {
    // In positions, not cache indices: left padding shifts them equally, so the difference is the same.
    allowed = allowed & (k_index > q_index - config_.sliding_window).unsqueeze(0);
  }
  const double min_value = dtype_ == torch::kFloat32   ? std::numeric_limits<float>::lowest()
                           : dtype_ == torch::kFloat64 ? std::numeric_limits<double>::lowest()
                           : dtype_ == torch::kFloat16 ? -65504.0
                                                       : -3.3895e38;
  return torch::zeros({B, 1, T, N}, torch::dtype(dtype_).device(device_))
      .masked_fill(allowed.logical_not().unsqueeze(1), min_value);
}

torch::Tensor Decoder::embed(const torch::Tensor& ids) const {  // [B, T] -> [B, T, E]
  return embed_.index_select(0, ids.reshape(-1)).reshape({ids.size(0), ids.size(1), -1});
}

// Every decoder layer on hidden states h [B, T, E]; `store` gives the keys and
// values [B, K, S, D] to attend over, whose S columns bias [B, 1, T, S] masks.
torch::Tensor Decoder::layers(torch::Tensor h, const torch::Tensor& cos, const torch::Tensor& sin,
                              const torch::Tensor& bias, const KvStore& store) const {
  for (std::size_t l = 0; l < layers_.size(); ++l) h = layer(l, h, cos, sin, bias, store);
  return h;
}

torch::Tensor Decoder::layer(std::size_t l, const torch::Tensor& h_in, const torch::Tensor& cos,
                             const torch::Tensor& sin, const torch::Tensor& bias, const KvStore& store) const {
  const long B = h_in.size(0), T = h_in.size(1);
  const long H = config_.num_attention_heads, K = config_.num_key_value_heads, D = config_.head_dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  // Grouped-query attention without copying kv heads: query head h = k * G + g
  // uses kv head k (transformers' repeat_kv order), so the G query heads of a
  // kv head are stacked along the rows: q [B, K, G*T, D] against k [B, K, S, D].
  const long G = H / K;
  const auto& w = layers_[l];
  auto h = h_in;
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
    const auto probs = torch::softmax(scores, -1, compute_).to(dtype_).reshape({B, K, G * T, S});
    context = torch::matmul(probs, values);
  }
  const auto attn = context.reshape({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
  h = h + w.o.forward(attn);
  const auto y = rms_norm(h, w.post_norm);
  const auto gate = w.gate.forward(y);
  return h + w.down.forward(gate * torch::sigmoid(gate) * w.up.forward(y));
}

// Final norm and lm_head: logits [B, T, V] in fp32 (fp64 for a float64 model).
torch::Tensor Decoder::head(const torch::Tensor& h) const {
  return torch::matmul(rms_norm(h, norm_), lm_head_.t()).to(compute_);
}

}  // namespace sensecf::llm
