// Generation (see model.h): batched prompts with left padding, greedy or
// sampled next tokens, and with a CUDA LibTorch (SENSECF_TORCH_CUDA=1) the decode
// steps as one replayed CUDA graph (DecodeGraph below). Inference only: every
// pass runs under NoGradGuard.
//
// Shapes: B batch, V vocabulary, C cache capacity.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>

#include "decoding.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/llm/model/decoder.h"

#if SENSECF_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace sensecf::llm {

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
  DecodeGraph(const Decoder& model, KvCache& cache, long steps)
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

  const Decoder& model_;
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

namespace {

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

std::vector<std::vector<int>> generate(const CausalLM& base, const std::vector<std::vector<int>>& prompts,
                                       const GenerationOptions& o, int pad_id) {
  const auto* model = dynamic_cast<const Decoder*>(&base);
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
  std::string eager_reason = model->graph_off_reason_;
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
