// NN classifier (LibTorch MLP): the explained black box f.
//
// Reference path only: fp32 on CPU, single process. Shapes: x: [B, n_in],
// logits: [B]. Does not do class weighting or hyper-parameter search.
#include "sensecf/clf/nn.h"
#include "sensecf/clf/nn_torch.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "sensecf/clf/preprocess.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/core/simd.h"

namespace sensecf::clf {
namespace {

torch::nn::Sequential make_mlp(std::size_t n_inputs, const std::vector<int>& hidden, double dropout) {
  torch::nn::Sequential net;
  auto in = static_cast<std::int64_t>(n_inputs);
  for (int h : hidden) {
    net->push_back(torch::nn::Linear(in, h));
    net->push_back(torch::nn::ReLU());
    if (dropout > 0) net->push_back(torch::nn::Dropout(dropout));
    in = h;
  }
  net->push_back(torch::nn::Linear(in, 1));
  return net;
}

torch::Tensor to_tensor(const data::Matrix& m) {
  auto t = torch::empty({static_cast<std::int64_t>(m.n_rows), static_cast<std::int64_t>(m.n_cols)}, torch::kFloat32);
  auto acc = t.accessor<float, 2>();
  for (std::size_t r = 0; r < m.n_rows; ++r)
    for (std::size_t c = 0; c < m.n_cols; ++c) acc[static_cast<long>(r)][static_cast<long>(c)] = static_cast<float>(m.at(r, c));
  return t;
}

// out[o] = b[o] + wt[i0][o] a[i0] + wt[i1][o] a[i1] + ..., over the inputs i
// with a[i] != 0 in increasing order (one-hot and ReLU zeros are left out), for
// one Linear layer; wt: [n_in, n_out] row-major. The non-zero inputs are listed
// first without a branch (ReLU zeros fall at random, a branch per input would
// be mispredicted half the time); the outputs then go in chunks held in
// registers across the whole input list (AVX-512, AVX2 or SSE2: core/simd.h),
// no FMA. Each output's sum is the same sequence of roundings as one output
// alone, so the result depends neither on the chunking nor on the vector width.

// One output at a time: the same sums.
inline void dense_outputs(const double* a, const std::uint32_t* nonzero, std::size_t n_nonzero, const double* wt,
                          const double* b, std::size_t n_out, double* out, std::size_t o) {
  for (; o < n_out; ++o) {
    double acc = b[o];
    for (std::size_t t = 0; t < n_nonzero; ++t) acc += wt[nonzero[t] * n_out + o] * a[nonzero[t]];
    out[o] = acc;
  }
}

// Appends the indices i in [from, n_in) with a[i] != 0, in order and without a
// branch, to the n already in `nonzero`; returns the new count.
inline std::size_t list_nonzero(const double* a, std::size_t from, std::size_t n_in, std::uint32_t* nonzero,
                                std::size_t n) {
  for (std::size_t i = from; i < n_in; ++i) {
    nonzero[n] = static_cast<std::uint32_t>(i);
    n += a[i] != 0.0 ? 1 : 0;  // NaN counts as non-zero, as in a plain "skip zeros" loop
  }
  return n;
}

#if defined(__GNUC__)
// Element-wise arithmetic on 4 or 8 doubles (GCC/Clang vector extension): the
// compiler keeps a chunk's sums in registers and never vectorises across the
// input list instead (which it does for plain loops here, with gathers).
typedef double Double4 __attribute__((vector_size(32)));
typedef double Double8 __attribute__((vector_size(64)));

// Outputs [o, ...) in chunks of kVectors vectors of Vec; returns the first output not done.
template <class Vec, std::size_t kVectors>
__attribute__((always_inline)) inline std::size_t dense_chunks(const double* a, const std::uint32_t* nonzero,
                                                                std::size_t n_nonzero, const double* wt,
                                                                const double* b, std::size_t n_out, double* out,
                                                                std::size_t o) {
  constexpr std::size_t kLanes = sizeof(Vec) / sizeof(double);
  constexpr std::size_t kChunk = kLanes * kVectors;
  for (; o + kChunk <= n_out; o += kChunk) {
    Vec acc[kVectors];
    std::memcpy(acc, b + o, sizeof acc);
    for (std::size_t t = 0; t < n_nonzero; ++t) {
      const std::uint32_t i = nonzero[t];
      const double ai = a[i];
      const double* w = wt + i * n_out + o;
      for (std::size_t v = 0; v < kVectors; ++v) {
        Vec wv;
        std::memcpy(&wv, w + kLanes * v, sizeof wv);
        acc[v] += wv * ai;
      }
    }
    std::memcpy(out + o, acc, sizeof acc);
  }
  return o;
}
#endif

// nonzero: room for n_in indices. Chunks of 32 outputs, then 4, then single ones.
__attribute__((always_inline)) inline void dense_layer_4(const double* a, std::size_t n_in, const double* wt,
                                                         const double* b, std::size_t n_out, double* out,
                                                         std::uint32_t* nonzero) {
  const std::size_t n = list_nonzero(a, 0, n_in, nonzero, 0);
  std::size_t o = 0;
#if defined(__GNUC__)
  o = dense_chunks<Double4, 8>(a, nonzero, n, wt, b, n_out, out, o);
  o = dense_chunks<Double4, 1>(a, nonzero, n, wt, b, n_out, out, o);
#endif
  dense_outputs(a, nonzero, n, wt, b, n_out, out, o);
}

void dense_layer_baseline(const double* a, std::size_t n_in, const double* wt, const double* b, std::size_t n_out,
                          double* out, std::uint32_t* nonzero) {
  dense_layer_4(a, n_in, wt, b, n_out, out, nonzero);
}

#if SENSECF_HAVE_SIMD_VARIANTS
SENSECF_TARGET_AVX2 void dense_layer_avx2(const double* a, std::size_t n_in, const double* wt, const double* b,
                                          std::size_t n_out, double* out, std::uint32_t* nonzero) {
  dense_layer_4(a, n_in, wt, b, n_out, out, nonzero);
}

// AVX-512: chunks of 64 outputs (8 registers of 8), then 32, then 8, then single
// ones; the non-zero inputs are listed 8 at a time with a compress-store.
SENSECF_TARGET_AVX512 void dense_layer_avx512(const double* a, std::size_t n_in, const double* wt,
                                              const double* b, std::size_t n_out, double* out,
                                              std::uint32_t* nonzero) {
  std::size_t n = 0, i = 0;
  const __m256i step = _mm256_set1_epi32(8);
  __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (; i + 8 <= n_in; i += 8) {
    // != 0, true for NaN (unordered), as a[i] != 0.0 is.
    const __mmask8 keep = _mm512_cmp_pd_mask(_mm512_loadu_pd(a + i), _mm512_setzero_pd(), _CMP_NEQ_UQ);
    _mm256_mask_compressstoreu_epi32(nonzero + n, keep, index);
    n += static_cast<std::size_t>(__builtin_popcount(keep));
    index = _mm256_add_epi32(index, step);
  }
  n = list_nonzero(a, i, n_in, nonzero, n);
  std::size_t o = dense_chunks<Double8, 8>(a, nonzero, n, wt, b, n_out, out, 0);
  o = dense_chunks<Double8, 4>(a, nonzero, n, wt, b, n_out, out, o);
  o = dense_chunks<Double8, 1>(a, nonzero, n, wt, b, n_out, out, o);
  dense_outputs(a, nonzero, n, wt, b, n_out, out, o);
}
#endif

// out[o] = b[o] + wt[i0][o] a[i0] + wt[i1][o] a[i1] + ... (see above) at the
// SIMD level in force (core/simd.h); every level gives the same bits.
void dense_layer(const double* a, std::size_t n_in, const double* wt, const double* b, std::size_t n_out,
                 double* out, std::uint32_t* nonzero) {
#if SENSECF_HAVE_SIMD_VARIANTS
  switch (simd_level()) {
    case SimdLevel::kAvx512: return dense_layer_avx512(a, n_in, wt, b, n_out, out, nonzero);
    case SimdLevel::kAvx2: return dense_layer_avx2(a, n_in, wt, b, n_out, out, nonzero);
    case SimdLevel::kBaseline: break;
  }
#endif
  dense_layer_baseline(a, n_in, wt, b, n_out, out, nonzero);
}

class NnClassifier final : public Classifier {
 public:
  explicit NnClassifier(ClfOptions options) : options_(std::move(options)) {}
  std::string kind() const override { return "nn"; }

  void fit(const data::Schema& schema, const data::Matrix& x, const std::vector<int>& y) override {
    if (options_.threads > 0) torch::set_num_threads(options_.threads);
    torch::manual_seed(options_.seed);
    encoder_.fit(schema, x);
    net_ = make_mlp(encoder_.n_inputs(), options_.nn_hidden, options_.nn_dropout);

    // Stratified validation split of the training rows.
    Rng rng(derive_seed(options_.seed, "nn/validation"));
    std::vector<std::size_t> by_class[2];
    for (std::size_t i = 0; i < y.size(); ++i) by_class[y[i]].push_back(i);
    std::vector<std::size_t> train_idx, val_idx;
    for (auto& rows : by_class) {
      rng.shuffle(rows);
      const auto n_val = static_cast<std::size_t>(options_.nn_validation_fraction * static_cast<double>(rows.size()));
      val_idx.insert(val_idx.end(), rows.begin(), rows.begin() + static_cast<long>(n_val));
      train_idx.insert(train_idx.end(), rows.begin() + static_cast<long>(n_val), rows.end());
    }
    if (train_idx.empty()) throw Error("NN training set is empty");
    const torch::Tensor xt = to_tensor(encoder_.transform(x));  // [N, n_in]
    torch::Tensor yt = torch::empty({static_cast<long>(y.size())}, torch::kFloat32);
    for (std::size_t i = 0; i < y.size(); ++i) yt[static_cast<long>(i)] = static_cast<float>(y[i]);
    auto index = [](const std::vector<std::size_t>& v) {
      std::vector<std::int64_t> w(v.begin(), v.end());
      return torch::tensor(w, torch::kInt64);
    };
    const torch::Tensor x_val = val_idx.empty() ? xt : xt.index_select(0, index(val_idx));
    const torch::Tensor y_val = val_idx.empty() ? yt : yt.index_select(0, index(val_idx));

    torch::optim::Adam opt(net_->parameters(),
                           torch::optim::AdamOptions(options_.nn_learning_rate).weight_decay(options_.nn_weight_decay));
    double best_loss = std::numeric_limits<double>::infinity();
    std::vector<torch::Tensor> best_state;
    int since_best = 0;
    int epoch = 0;
    const auto batch = static_cast<std::size_t>(options_.nn_batch_size);
    curve_.clear();
    for (; epoch < options_.nn_max_epochs; ++epoch) {
      net_->train();
      rng.shuffle(train_idx);
      double loss_sum = 0;
      std::size_t loss_rows = 0;
      for (std::size_t start = 0; start < train_idx.size(); start += batch) {
        const std::vector<std::size_t> b(train_idx.begin() + static_cast<long>(start),
                                         train_idx.begin() + static_cast<long>(std::min(train_idx.size(), start + batch)));
        const auto bi = index(b);
        const torch::Tensor logits = net_->forward(xt.index_select(0, bi)).squeeze(1);  // [B]
        const torch::Tensor loss = torch::binary_cross_entropy_with_logits(logits, yt.index_select(0, bi));
        opt.zero_grad();
        loss.backward();
        opt.step();
        loss_sum += loss.item<double>() * static_cast<double>(b.size());
        loss_rows += b.size();
      }
      net_->eval();
      double val_loss = 0;
      {
        torch::NoGradGuard no_grad;
        val_loss = torch::binary_cross_entropy_with_logits(net_->forward(x_val).squeeze(1), y_val).item<double>();
      }
      curve_.push_back({epoch + 1, loss_sum / static_cast<double>(std::max<std::size_t>(1, loss_rows)), val_loss});
      if (val_loss < best_loss - 1e-6) {
        best_loss = val_loss;
        since_best = 0;
        best_state.clear();
        for (const auto& p : net_->parameters()) best_state.push_back(p.detach().clone());
      } else if (++since_best >= options_.nn_patience) {
        break;
      }
    }
    {
      torch::NoGradGuard no_grad;
      auto params = net_->parameters();
      for (std::size_t i = 0; i < params.size() && i < best_state.size(); ++i) params[i].copy_(best_state[i]);
    }
    net_->eval();
    build_inference();
    spdlog::info("nn: {} epochs (best validation loss {:.4f}, {} train / {} validation rows, {} inputs)",
                 epoch, best_loss, train_idx.size(), val_idx.size(), encoder_.n_inputs());
  }

  // Two inference paths behind one interface. Small batches (the many tiny calls
  // of a CF search) run a plain C++ float64 loop over the widened weights: no
  // LibTorch dispatch overhead (2.5 us instead of 18 us for one row). Large
  // batches run the float32 LibTorch forward (BLAS; ~7x faster at 1,000 rows than
  // the loop or a float64 forward). The paths agree to ~1e-7 (float32 rounding);
  // the unit test holds them to 1e-6.
  std::vector<Epoch> training_curve() const override { return curve_; }

  std::vector<double> predict_proba(const data::Matrix& x) const override {
    if (!net_) throw Error("nn: predict_proba called before fit/load");
    // Small batches: the float64 loop (a wrong x falls through to transform's error).
    if (x.n_rows <= kSmallBatch && encoder_.fitted() && x.n_cols == encoder_.n_features()) return forward_small(x);
    const data::Matrix in = encoder_.transform(x);  // [B, n_inputs]
    torch::NoGradGuard no_grad;
    torch::nn::Sequential net = net_;  // forward() is non-const; the handle copy shares the module
    const torch::Tensor p = torch::sigmoid(net->forward(to_tensor(in)).squeeze(1)).contiguous();
    const float* ptr = p.data_ptr<float>();
    return std::vector<double>(ptr, ptr + p.numel());
  }

  void save(const std::string& dir) const override {
    if (const auto bad = first_non_finite(); !bad.empty()) {
      throw Error("the trained network has " + bad + ": training diverged, not saving it",
                  "lower --clf.nn_learning_rate, or check the data for extreme values");
    }
    torch::save(net_, dir + "/nn.pt");
    // The weights are also written as plain JSON so that independent tools (the
    // Python parity harness in bench/) can evaluate exactly this function:
    // h = relu(W h + b) per hidden layer, logit = W h + b, p = sigmoid(logit).
    // dense_ holds exactly these weights, widened to float64 and transposed.
    nlohmann::json layers = nlohmann::json::array();
    for (const Dense& l : dense_) {
      std::vector<std::vector<double>> rows(l.n_out, std::vector<double>(l.n_in));  // W: [n_out, n_in]
      for (std::size_t i = 0; i < l.n_in; ++i)
        for (std::size_t o = 0; o < l.n_out; ++o) rows[o][i] = l.wt[i * l.n_out + o];
      layers.push_back({{"weight", rows}, {"bias", l.b}});
    }
    const nlohmann::json meta = {{"hidden", options_.nn_hidden}, {"dropout", options_.nn_dropout},
                                 {"encoder", encoder_.to_json()}, {"layers", layers}};
    std::ofstream(dir + "/nn.json") << meta.dump(2) << "\n";
  }

  void load(const std::string& dir, const data::Schema& schema) override {
    std::ifstream in(dir + "/nn.json");
    if (!in) throw Error("cannot open '" + dir + "/nn.json'", "is '" + dir + "' a directory written by `sensecf train-clf --model nn`?");
    nlohmann::json meta;
    try {
      in >> meta;
      options_.nn_hidden = meta.at("hidden").get<std::vector<int>>();
      options_.nn_dropout = meta.at("dropout").get<double>();
      encoder_ = InputEncoder::from_json(meta.at("encoder"));
    } catch (const nlohmann::json::exception& e) {
      throw Error("'" + dir + "/nn.json' is malformed: " + e.what());
    }
    net_ = make_mlp(encoder_.n_inputs(), options_.nn_hidden, options_.nn_dropout);
    try {
      torch::load(net_, dir + "/nn.pt");
    } catch (const c10::Error& e) {
      throw Error("cannot load '" + dir + "/nn.pt': " + e.what_without_backtrace());
    }
    net_->eval();
    build_inference();
    if (const auto bad = first_non_finite(); !bad.empty()) {
      throw Error("'" + dir + "/nn.pt' has " + bad + ": the model would predict NaN",
                  "restore the model directory from a copy, or retrain the model");
    }
  }

 const InputEncoder& encoder() const { return encoder_; }
  torch::nn::Sequential module() const { return net_; }

 private:
  static constexpr std::size_t kSmallBatch = 64;

  // One Linear layer in float64, transposed: wt: [n_in, n_out], row-major.
  struct Dense {
    std::size_t n_in = 0, n_out = 0;
    std::vector<double> wt, b;
  };

  // Widens the trained weights for the small-batch path (after fit and load).
  // "" when every weight of the network is finite, else which layer's are not.
  std::string first_non_finite() const {
    std::size_t layer = 0;
    for (const auto& child : net_->children()) {
      const auto* linear = child->as<torch::nn::Linear>();
      if (!linear) continue;
      ++layer;
      if (!torch::isfinite(linear->weight).all().item<bool>()) return fmt::format("non-finite weights in layer {}", layer);
      if (!torch::isfinite(linear->bias).all().item<bool>()) return fmt::format("a non-finite bias in layer {}", layer);
    }
    return "";
  }

  void build_inference() {
    dense_.clear();
    for (const auto& child : net_->children()) {
      if (const auto* linear = child->as<torch::nn::Linear>()) {
        const torch::Tensor w = linear->weight.detach().to(torch::kFloat64).contiguous();
        const torch::Tensor b = linear->bias.detach().to(torch::kFloat64).contiguous();
        Dense l;
        l.n_out = static_cast<std::size_t>(w.size(0));
        l.n_in = static_cast<std::size_t>(w.size(1));
        const torch::Tensor wt = w.t().contiguous();
        l.wt.assign(wt.data_ptr<double>(), wt.data_ptr<double>() + wt.numel());
        l.b.assign(b.data_ptr<double>(), b.data_ptr<double>() + b.numel());
        dense_.push_back(std::move(l));
      }
    }
  }

  // h = relu(W h + b) per hidden layer, then p = sigmoid(W h + b); in: [B, n_inputs].
  // Each output sums b + w_0 a_0 + w_1 a_1 + ... in input order (dense_layer).
  // x: [B, d] raw rows, encoded one at a time into a per-thread buffer.
  std::vector<double> forward_small(const data::Matrix& x) const {
    std::vector<double> out(x.n_rows);
    std::size_t width = encoder_.n_inputs();
    for (const Dense& layer : dense_) width = std::max(width, layer.n_out);
    thread_local std::vector<double> a, next;
    thread_local std::vector<std::uint32_t> nonzero;
    a.resize(width);
    next.resize(width);
    nonzero.resize(width);
    for (std::size_t r = 0; r < x.n_rows; ++r) {
      encoder_.transform_row(x.row(r), a.data());
      for (std::size_t l = 0; l < dense_.size(); ++l) {
        const Dense& layer = dense_[l];
        dense_layer(a.data(), layer.n_in, layer.wt.data(), layer.b.data(), layer.n_out, next.data(),
                    nonzero.data());
        if (l + 1 < dense_.size())
          for (std::size_t o = 0; o < layer.n_out; ++o) next[o] = std::max(0.0, next[o]);
        std::swap(a, next);
      }
      out[r] = 1.0 / (1.0 + std::exp(-a[0]));
    }
    return out;
  }

  ClfOptions options_;
  InputEncoder encoder_;
  std::vector<Epoch> curve_;  // of the last fit()
  torch::nn::Sequential net_{nullptr};  // trained float32 module (training, gradients, large batches)
  std::vector<Dense> dense_;            // the same weights in float64 for the small-batch loop
};

}  // namespace

void set_torch_threads(int n) {
  if (n > 0) torch::set_num_threads(n);
}

NnModule nn_module(const Classifier& model) {
  const auto* nn = dynamic_cast<const NnClassifier*>(&model);
  if (!nn) {
    throw Error("this method needs gradients of the classifier, but '" + model.kind() + "' is not the NN",
                "use --model nn for gradient-based methods (dice-gradient)");
  }
  if (nn->module().is_empty()) throw Error("nn: the model is not trained or loaded");
  return NnModule{nn->module(), &nn->encoder()};
}

std::unique_ptr<Classifier> make_nn_classifier(const ClfOptions& options) {
  return std::make_unique<NnClassifier>(options);
}

}  // namespace sensecf::clf
