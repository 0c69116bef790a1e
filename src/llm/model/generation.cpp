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
#include <tuple>

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

// --- choosing the next tokens -------------------------------------------------

namespace {

// On the CPU the sampler first looks at this many most likely tokens (top-k's
// k when smaller) and widens (x4, or to the whole row) only when they cannot
// hold every token top-k / top-p keeps: sorting a 128k vocabulary there costs
// tens of ms a row, a top-256 a few. On an accelerator it sorts whole rows at once, which is cheap
// there and needs no host round trip to decide whether to widen.
constexpr long kCpuCandidates = 256;
constexpr long kWiden = 4;

}  // namespace

torch::Tensor sample_tokens(const torch::Tensor& scores, const GenerationOptions& o, const torch::Tensor& uniforms) {
  const auto x = scores.to(torch::kFloat32) / o.temperature;  // [R, N]
  const long N = x.size(1);
  const auto probs = torch::softmax(x, 1);
  const bool by_k = o.top_k > 0 && o.top_k < N, by_p = o.top_p < 1.0;
  const auto u = uniforms.to(x.device(), torch::kFloat32).view({-1, 1});  // [R, 1]

  // Inverse CDF: the first column whose cumulative mass exceeds u * total.
  // The target is kept below the total (u rounded to float can be 1), so such
  // a column exists, and it has mass: the cumulative sum grew there.
  auto draw = [&u](const torch::Tensor& p) {  // p [R, n] -> column [R, 1]
    const auto cdf = p.cumsum(1);
    const auto total = cdf.narrow(1, cdf.size(1) - 1, 1);
    const auto target = torch::minimum(u * total, torch::nextafter(total, torch::zeros_like(total)));
    return torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true);
  };
  if (!by_k && !by_p) return draw(probs).squeeze(1);  // the whole row in id order: nothing to sort

  // Candidates: the n most likely tokens, most likely first. Enough when they
  // hold every token tied with the k-th (top-k keeps ties: transformers removes
  // only logits below the k-th) or, without top-k, a mass that reaches top_p.
  long n = x.device().is_cpu() ? std::min(N, by_k ? static_cast<long>(o.top_k) : kCpuCandidates) : N;
  torch::Tensor values, index, p;
  for (;;) {
    std::tie(values, index) = n == N ? x.sort(1, /*descending=*/true) : x.topk(n, 1);
    p = probs.gather(1, index);
    if (n == N) break;
    long needed = n;
    if (by_k) {
      const auto kth = values.narrow(1, o.top_k - 1, 1);
      needed = (x >= kth).sum(1).max().item<std::int64_t>();
    } else if ((p.sum(1) < o.top_p).any().item<bool>()) {
      needed = kWiden * n > N / 2 ? N : kWiden * n;  // past half the row, sort it all
    }
    if (needed <= n) break;
    n = needed;
  }
  if (by_k) {
    p = p.masked_fill(values < values.narrow(1, o.top_k - 1, 1), 0);
    p = p / p.sum(1, /*keepdim=*/true);  // the softmax over the top-k logits
  }
  if (by_p) {
    // The smallest set of most likely tokens whose mass reaches top_p: drop a
    // token once the tokens ranked above it hold top_p (never the first).
    p = p.masked_fill(p.cumsum(1) - p >= o.top_p, 0);
  }
  return index.gather(1, draw(p)).squeeze(1);
}

namespace {

// The allowed ids of the live rows of one step, padded to a rectangle [R, A]
// (-1: padding); rows of finished sequences get the single id 0.
struct Allowed {
  torch::Tensor ids;    // [R, A] int64 on the model's device; padding clamped to 0
  torch::Tensor valid;  // [R, A] bool
};

Allowed gather_allowed(const GenerationOptions& o, const std::vector<std::size_t>& slots,
                       const std::vector<bool>& done, int step, long vocab, const c10::Device& device,
                       GenerationStats& stats) {
  std::vector<std::vector<int>> rows(slots.size());
  std::size_t width = 1;
  for (std::size_t r = 0; r < slots.size(); ++r) {
    const std::size_t sequence = slots[r];
    if (done[sequence]) continue;
    const auto began = std::chrono::steady_clock::now();
    o.allowed_tokens(sequence, rows[r]);
    stats.mask_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    auto& ids = rows[r];
    if (ids.empty())
      throw Error(fmt::format("generate: allowed_tokens gave no token for sequence {} at step {}", sequence, step),
                  "the constraint must allow at least one token (e.g. the end-of-turn id once it is complete)");
    // Sorted: duplicates go, and greedy's ties fall to the lowest id as argmax over the whole vocabulary does.
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.front() < 0 || ids.back() >= vocab)
      throw Error(fmt::format("generate: allowed_tokens gave id {} for sequence {} at step {}, outside the "
                              "vocabulary [0, {})",
                              ids.front() < 0 ? ids.front() : ids.back(), sequence, step, vocab));
    width = std::max(width, ids.size());
  }
  ++stats.masked_steps;
  std::vector<std::int64_t> flat(slots.size() * width, -1);
  for (std::size_t r = 0; r < slots.size(); ++r) {
    if (rows[r].empty()) flat[r * width] = 0;  // a finished row: anything, ignored
    std::copy(rows[r].begin(), rows[r].end(), flat.begin() + static_cast<long>(r * width));
  }
  const auto ids = torch::tensor(flat, torch::kInt64).view({static_cast<long>(slots.size()), -1}).to(device);
  return {ids.clamp_min(0), ids >= 0};
}

}  // namespace

std::vector<int> pick_tokens(const std::vector<float>& logits, std::size_t rows, const GenerationOptions& o,
                             const std::vector<double>& uniforms) {
  validate(o);
  if (rows == 0 || logits.empty() || logits.size() % rows != 0)
    throw Error(fmt::format("pick_tokens: {} logits are not {} rows of a vocabulary", logits.size(), rows));
  if (o.temperature > 0 && uniforms.size() != rows)
    throw Error(fmt::format("pick_tokens: {} uniforms for {} rows", uniforms.size(), rows));
  torch::NoGradGuard no_grad;
  const auto R = static_cast<long>(rows), V = static_cast<long>(logits.size() / rows);
  const auto x = torch::from_blob(const_cast<float*>(logits.data()), {R, V}, torch::kFloat32);
  const auto chosen =
      o.temperature <= 0
          ? x.argmax(1)
          : sample_tokens(x, o, torch::tensor(std::vector<float>(uniforms.begin(), uniforms.end()), torch::kFloat32));
  const auto c = chosen.contiguous();
  return std::vector<int>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + R);
}

// --- generate -------------------------------------------------------------------

std::vector<std::vector<int>> generate(const CausalLM& base, const std::vector<std::vector<int>>& prompts,
                                       const GenerationOptions& o, int pad_id) {
  validate(o);
  const auto* model = dynamic_cast<const Decoder*>(&base);
  if (!model) throw Error("generate: unsupported model implementation");
  if (!o.seeds.empty() && o.seeds.size() != prompts.size())
    throw UsageError(fmt::format("generate: {} seeds for {} prompts", o.seeds.size(), prompts.size()),
                     "give one seed per prompt, or none (then they derive from GenerationOptions::seed)");
  torch::NoGradGuard no_grad;
  const auto B = static_cast<long>(prompts.size());
  const long V = model->config().vocab_size;
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
  KvCache cache = model->empty_cache(B, static_cast<long>(longest) + o.max_new_tokens);
  auto logits = model->forward(model->ids_tensor(padded),
                               torch::tensor(mask, torch::kInt64).view({B, static_cast<long>(longest)}), cache,
                               /*last_only=*/true);
  model->check_finite_logits(logits);  // one check per call: NaN weights would otherwise "generate" text
  std::vector<std::vector<int>> out(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  std::vector<Rng> rngs;
  for (long b = 0; b < B; ++b) {
    const auto i = static_cast<std::size_t>(b);
    rngs.emplace_back(o.seeds.empty() ? derive_seed(o.seed, "generate/" + std::to_string(b))
                                      : derive_seed(o.seeds[i], "generate"));
  }
  // Row r of the batch (of `logits` and the cache) is sequence slots[r]; the
  // identity until finished rows leave the batch.
  std::vector<std::size_t> slots(prompts.size());
  for (std::size_t i = 0; i < slots.size(); ++i) slots[i] = i;
  GenerationStats stats;

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

  for (int step = 0; step < o.max_new_tokens; ++step) {
    const long R = static_cast<long>(slots.size());
    const auto last = logits.select(1, logits.size(1) - 1);  // [R, V]
    // With allowed_tokens, each row chooses among its allowed ids' logits only.
    Allowed allowed;
    auto scores = last;  // [R, N]: N = V, or the widest allowed list
    if (o.allowed_tokens) {
      allowed = gather_allowed(o, slots, done, step, V, last.device(), stats);
      scores = last.gather(1, allowed.ids).masked_fill(allowed.valid.logical_not(),
                                                       -std::numeric_limits<float>::infinity());
    }
    torch::Tensor chosen;  // [R] columns of `scores`
    if (o.temperature <= 0) {
      chosen = scores.argmax(1);
    } else {
      // One uniform per live sequence from its own stream (finished rows draw nothing).
      std::vector<float> u(slots.size(), 0.0f);
      for (std::size_t r = 0; r < slots.size(); ++r)
        if (!done[slots[r]]) u[r] = static_cast<float>(rngs[slots[r]].uniform());
      chosen = sample_tokens(scores, o, torch::tensor(u, torch::kFloat32));
    }
    if (o.allowed_tokens) chosen = allowed.ids.gather(1, chosen.view({R, 1})).view({R});
    // The step's one device-to-host transfer.
    const auto picked = chosen.to(torch::kCPU, torch::kInt64).contiguous();
    const std::int64_t* picked_ids = picked.data_ptr<std::int64_t>();

    std::vector<int> next(slots.size(), pad_id);
    std::vector<std::int64_t> next_mask(slots.size(), 0);
    for (std::size_t r = 0; r < slots.size(); ++r) {
      const std::size_t i = slots[r];
      if (done[i]) continue;
      next[r] = static_cast<int>(picked_ids[r]);
      next_mask[r] = 1;
      out[i].push_back(next[r]);
      bool stop = std::find(o.stop_ids.begin(), o.stop_ids.end(), next[r]) != o.stop_ids.end();
      if (o.on_token && !o.on_token(i, next[r])) stop = true;
      if (!stop && !o.stop_strings.empty() && o.decode) {
        const auto text = o.decode(out[i]);
        for (const auto& s : o.stop_strings) stop = stop || text.find(s) != std::string::npos;
      }
      done[i] = stop;
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }) || step + 1 == o.max_new_tokens) break;
    ++stats.decode_steps;
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
    // Eager steps only (the graph's shapes are static): once at least half of
    // the rows have finished, they leave the batch, cache rows included.
    if (o.compact) {
      std::vector<std::int64_t> keep;
      for (std::size_t r = 0; r < slots.size(); ++r)
        if (!done[slots[r]]) keep.push_back(static_cast<std::int64_t>(r));
      const long finished = R - static_cast<long>(keep.size());
      if (finished > 0 && 2 * finished >= R) {
        const auto rows = torch::tensor(keep, torch::kInt64).to(cache.mask.device());
        for (std::size_t l = 0; l < cache.k.size(); ++l) {
          cache.k[l] = cache.k[l].index_select(0, rows);
          cache.v[l] = cache.v[l].index_select(0, rows);
        }
        cache.mask = cache.mask.index_select(0, rows);
        cache.next_position = cache.next_position.index_select(0, rows);
        std::vector<std::size_t> kept_slots;
        std::vector<int> kept_next;
        for (const auto r : keep) {
          kept_slots.push_back(slots[static_cast<std::size_t>(r)]);
          kept_next.push_back(next[static_cast<std::size_t>(r)]);
        }
        slots = std::move(kept_slots);
        next = std::move(kept_next);
        next_mask.assign(slots.size(), 1);
        ++stats.compactions;
      }
    }
    std::vector<std::vector<int>> column;
    for (int t : next) column.push_back({t});
    logits = model->forward(model->ids_tensor(column),
                            torch::tensor(next_mask, torch::kInt64).view({static_cast<long>(slots.size()), 1}), cache,
                            /*last_only=*/true);
  }

  if (o.stats) {
    bool graph_ran = false;
#if SENSECF_CUDA_GRAPHS
    graph_ran = graph && graph->captured();
    stats.graph_setup_s = graph_ran ? graph->setup_seconds() : 0;
#endif
    stats.decode_path = graph_ran ? "cuda-graph" : "eager";
    stats.eager_reason = graph_ran ? "" : (eager_reason.empty() ? "no decode steps" : eager_reason);
    *o.stats = stats;
  }
  return out;
}

}  // namespace sensecf::llm
