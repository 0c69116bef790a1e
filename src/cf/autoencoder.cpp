// The tabular autoencoder behind NICE's plausibility reward (see autoencoder.h).
//
// Reference path only: fp32 on CPU. Shapes: x: [n, d] raw rows, e: [n, m]
// encoded rows, B = batch rows. Weight initialisation follows LibTorch's Linear
// default (uniform in +-1/sqrt(fan_in) for weights and biases) but draws from
// sensecf::Rng. Does not touch LibTorch's global RNG or thread settings.
#include "sensecf/cf/autoencoder.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cstdint>
#include <algorithm>
#include <cmath>

#include "sensecf/core/error.h"
#include "sensecf/core/random.h"

namespace sensecf::cf {
namespace {

// One raw feature's place in the encoded row.
struct Column {
  bool categorical = false;
  double min = 0.0;    // continuous: (x - min) / range
  double range = 1.0;
  std::size_t n_categories = 0;
  std::size_t offset = 0;  // first encoded column
};

torch::nn::Linear make_linear(std::int64_t in, std::int64_t out, Rng& rng) {
  torch::nn::Linear layer(in, out);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  torch::NoGradGuard no_grad;
  auto fill = [&](torch::Tensor& t) {
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    for (auto& w : v) w = static_cast<float>(rng.uniform(-bound, bound));
    t.copy_(torch::from_blob(v.data(), t.sizes(), torch::kFloat32));
  };
  fill(layer->weight);
  fill(layer->bias);
  return layer;
}

}  // namespace

struct Autoencoder::Impl {
  std::vector<Column> columns;  // [d]
  std::size_t n_encoded = 0;    // m
  torch::nn::Sequential net;
  double training_error = 0.0;

  // x: [n, d] -> e: [n, m] as a float tensor.
  torch::Tensor encode(const data::Matrix& x) const {
    if (x.n_cols != columns.size()) {
      throw Error(fmt::format("autoencoder: rows have {} features, expected {}", x.n_cols, columns.size()));
    }
    std::vector<float> e(x.n_rows * n_encoded, 0.0f);
    for (std::size_t r = 0; r < x.n_rows; ++r) {
      float* out = e.data() + r * n_encoded;
      for (std::size_t j = 0; j < columns.size(); ++j) {
        const Column& c = columns[j];
        const double v = x.at(r, j);
        if (!c.categorical) {
          out[c.offset] = static_cast<float>((v - c.min) / c.range);
        } else if (v >= 0 && v < static_cast<double>(c.n_categories) && v == std::floor(v)) {
          out[c.offset + static_cast<std::size_t>(v)] = 1.0f;
        }
      }
    }
    return torch::from_blob(e.data(), {static_cast<std::int64_t>(x.n_rows), static_cast<std::int64_t>(n_encoded)},
                            torch::kFloat32)
        .clone();
  }

  // e: [n, m] -> per-row MSE [n].
  torch::Tensor row_error(const torch::Tensor& e) const {
    torch::nn::Sequential module = net;  // forward() is non-const; the handle copy shares the module
    return (module->forward(e) - e).pow(2).mean(1);
  }
};

Autoencoder::Autoencoder() : impl_(std::make_unique<Impl>()) {}
Autoencoder::~Autoencoder() = default;
Autoencoder::Autoencoder(Autoencoder&&) noexcept = default;
Autoencoder& Autoencoder::operator=(Autoencoder&&) noexcept = default;

bool Autoencoder::fitted() const { return impl_ && !impl_->net.is_empty(); }

double Autoencoder::training_error() const { return impl_->training_error; }

void Autoencoder::fit(const data::Schema& schema, const data::Matrix& x, const AutoencoderOptions& options) {
  if (x.n_rows == 0) throw Error("autoencoder: no training rows");
  if (x.n_cols != schema.size()) {
    throw Error(fmt::format("autoencoder: training rows have {} features, the schema has {}", x.n_cols, schema.size()));
  }
  if (options.epochs < 1 || options.batch_size < 1) throw Error("autoencoder: epochs and batch_size must be positive");
  Impl& s = *impl_;
  s.columns.assign(schema.size(), Column{});
  s.n_encoded = 0;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const data::Feature& f = schema.features[j];
    Column& c = s.columns[j];
    c.offset = s.n_encoded;
    if (f.is_categorical()) {
      if (f.categories.empty()) throw Error("autoencoder: categorical feature '" + f.name + "' lists no categories");
      c.categorical = true;
      c.n_categories = f.categories.size();
      s.n_encoded += c.n_categories;
    } else {
      double lo = x.at(0, j), hi = x.at(0, j);
      for (std::size_t r = 1; r < x.n_rows; ++r) {
        lo = std::min(lo, x.at(r, j));
        hi = std::max(hi, x.at(r, j));
      }
      c.min = lo;
      c.range = hi - lo > 1e-12 ? hi - lo : 1.0;
      s.n_encoded += 1;
    }
  }

  // m -> 2m -> m/2 -> 2m -> m
  Rng rng(derive_seed(options.seed, "nice/autoencoder"));
  const auto m = static_cast<std::int64_t>(s.n_encoded);
  const std::int64_t wide = 2 * m, narrow = std::max<std::int64_t>(1, m / 2);
  s.net = torch::nn::Sequential();
  s.net->push_back(make_linear(m, wide, rng));
  s.net->push_back(torch::nn::ReLU());
  s.net->push_back(make_linear(wide, narrow, rng));
  s.net->push_back(torch::nn::ReLU());
  s.net->push_back(make_linear(narrow, wide, rng));
  s.net->push_back(torch::nn::ReLU());
  s.net->push_back(make_linear(wide, m, rng));

  const torch::Tensor e = s.encode(x);  // [n, m]
  torch::optim::Adam opt(s.net->parameters(), torch::optim::AdamOptions(options.learning_rate));
  std::vector<std::int64_t> order(x.n_rows);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  const auto batch = static_cast<std::size_t>(options.batch_size);
  s.net->train();
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    rng.shuffle(order);
    for (std::size_t start = 0; start < order.size(); start += batch) {
      const std::size_t end = std::min(order.size(), start + batch);
      const torch::Tensor index = torch::tensor(
          std::vector<std::int64_t>(order.begin() + static_cast<long>(start), order.begin() + static_cast<long>(end)),
          torch::kInt64);
      const torch::Tensor eb = e.index_select(0, index);  // [B, m]
      const torch::Tensor loss = torch::mse_loss(s.net->forward(eb), eb);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  s.net->eval();
  {
    torch::NoGradGuard no_grad;
    s.training_error = s.row_error(e).mean().item<double>();
  }
  spdlog::info("nice: autoencoder {}->{}->{}->{}->{} trained {} epochs on {} rows (mean reconstruction error {:.5f})",
               m, wide, narrow, wide, m, options.epochs, x.n_rows, s.training_error);
}

std::vector<double> Autoencoder::reconstruction_error(const data::Matrix& x) const {
  if (!fitted()) throw Error("autoencoder: reconstruction_error called before fit");
  if (x.n_rows == 0) return {};
  torch::NoGradGuard no_grad;
  const torch::Tensor err = impl_->row_error(impl_->encode(x)).contiguous();  // [n]
  const float* p = err.data_ptr<float>();
  return std::vector<double>(p, p + err.numel());
}

}  // namespace sensecf::cf
