// DiCE method="gradient" (dice-ml 0.12 explainer_interfaces/dice_pytorch.py,
// algorithm "DiverseCF"; notes: docs/cf-baselines.md and the original sources), for the
// NN black box only: gradients flow through LibTorch autograd.
//
// Variables V: [k, n_in], k = n_cfs CFs in DiCE's space: continuous features
// min-max normalised with the training min/max, categoricals one-hot; the
// columns follow the NN's InputEncoder layout (offset/width per feature), so
// the NN input is the affine map V * scale + shift (continuous: de-normalise,
// then the encoder's standardisation; one-hot: identity). Loss
//   yloss = (1/k) sum_i relu(1 - (2t - 1) logit_i),   logit = log(|p - 1e-6| / (1 - |p - 1e-6|))
//   prox  = sum_i sum_c w_c |V_ic - x_c| / (n_in k),  w_c = round(1/MAD_c of normalised data, 2), 1 for
//   one-hot dpp   = det(K), K_ij = 1 / (1 + dist(V_i, V_j)) + 1e-4 [i == j]   (0 for k == 1) reg   = sum_i
//   sum_{categorical g} (sum_{levels} V_i,g - 1)^2 L     = yloss + 0.5 prox - 1.0 dpp + 0.1 reg
// Adam (lr 0.05), initialised at x + n * 0.01 on the varied columns (CF n),
// gradients of immutable columns zeroed, V clamped to the permitted range after
// each step. Every iteration the rounded CFs (continuous to precision,
// categorical argmax) are predicted; when all are valid the set with the
// smallest mean |p - 0.5| is kept as backup. Stop: never before min_iter
// (500), at max_iter (5000), else when |dL| <= 1e-5 (loss_converge_maxiter 1)
// and all rounded CFs are valid. Final: rounded CFs, replaced by the backup set
// if one is invalid; post-hoc sparsity; only valid CFs are returned.
//
// Deliberate differences from dice-ml:
//   - a categorical code outside the schema's `allowed` has its one-hot column
//     pinned to 0 and is never chosen by the argmax (dice-ml's one-hot only has
//     the training categories);
//   - a continuous feature constant in the training data normalises with range
//     1 instead of dice-ml's 0 (whose permitted range then divides by zero);
//   - immutable features are copied from the query when decoding (dice-ml
//     decodes the frozen float32 value, which can drift in the last digits),
//     and their columns are not clamped (dice-ml clamps every column);
//   - gradients are taken with torch::autograd::grad with respect to V only, so
//     concurrent queries never touch the shared network's parameter gradients;
//   - the stopping test reuses the predictions of the backup step of the same
//     iteration (dice-ml predicts the same rounded CFs again), and the time
//     limit (CfOptions::time_limit) ends the optimisation early.
// Not here: RandomInitCF, project_iter, l2/log y-losses, other diversity losses.
#include <spdlog/fmt/fmt.h>
#include <torch/torch.h>

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <limits>

#include "dice_common.h"
#include "sensecf/cf/dice.h"
#include "sensecf/clf/nn_torch.h"
#include "sensecf/core/error.h"

namespace sensecf::cf {
namespace {

constexpr double kLossDiffThreshold = 1e-5;  // loss_diff_thres
constexpr int kLossConvergeMaxIter = 1;      // loss_converge_maxiter
constexpr double kInitStep = 0.01;           // init_near_query_instance: x + n * 0.01

using Row = std::vector<double>;

torch::Tensor to_tensor(const std::vector<double>& v) {
  std::vector<float> f(v.begin(), v.end());
  return torch::tensor(f, torch::kFloat32);
}

class DiceGradient final : public Generator {
 public:
  explicit DiceGradient(const CfOptions& options) : options_(options) {}
  std::string name() const override { return "dice-gradient"; }

  void prepare(const Context& context) override {
    Generator::prepare(context);
    data_ = dice::build_dice_data(context, options_.dice, name());
    module_ = clf::nn_module(context.f->classifier());  // throws sensecf::Error for a non-NN model
    const auto& features = module_.encoder->features();
    if (features.size() != data_.d) {
      throw Error(fmt::format("dice-gradient: the NN encodes {} features, the schema has {}", features.size(),
                              data_.d),
                  "was the NN trained with this schema?");
    }
    n_in_ = module_.encoder->n_inputs();
    std::vector<double> scale(n_in_, 1.0), shift(n_in_, 0.0), weights(n_in_, 1.0), minx(n_in_, 0.0),
        maxx(n_in_, 1.0), vary(n_in_, 0.0);
    range_.assign(data_.d, 1.0);
    groups_.clear();
    const data::Matrix& train = *context.train_x;
    for (std::size_t j = 0; j < data_.d; ++j) {
      const auto& e = features[j];
      for (std::size_t c = e.offset; c < e.offset + e.width(); ++c) vary[c] = data_.is_varied[j] ? 1.0 : 0.0;
      if (e.categorical) {
        groups_.push_back({e.offset, e.width()});
        for (std::size_t c = 0; c < e.width(); ++c) {
          const auto& allowed = data_.allowed[j];
          maxx[e.offset + c] =
              std::find(allowed.begin(), allowed.end(), static_cast<int>(c)) != allowed.end() ? 1.0 : 0.0;
        }
        continue;
      }
      const double range = data_.train_max[j] - data_.train_min[j];
      range_[j] = range > 0 ? range : 1.0;
      const double lo = data_.train_min[j];
      // MAD of the normalised column, <= 0 -> 1; weight round(1/MAD, 2).
      std::vector<double> column(train.n_rows);
      for (std::size_t r = 0; r < train.n_rows; ++r) column[r] = (train.at(r, j) - lo) / range_[j];
      const double med = dice::median(column);
      for (double& v : column) v = std::abs(v - med);
      double mad = dice::median(column);
      if (!(mad > 0)) mad = 1.0;
      weights[e.offset] = std::round(100.0 / mad) / 100.0;
      minx[e.offset] = (data_.lower[j] - lo) / range_[j];
      maxx[e.offset] = (data_.upper[j] - lo) / range_[j];
      scale[e.offset] = range_[j] / e.std;
      shift[e.offset] = (lo - e.mean) / e.std;
    }
    for (std::size_t c = 0; c < n_in_; ++c) {
      if (vary[c] == 0.0) {  // frozen columns stay at the query, even outside the permitted range
        minx[c] = -std::numeric_limits<double>::infinity();
        maxx[c] = std::numeric_limits<double>::infinity();
      }
    }
    scale_ = to_tensor(scale);
    shift_ = to_tensor(shift);
    weights_ = to_tensor(weights);
    minx_ = to_tensor(minx);
    maxx_ = to_tensor(maxx);
    vary_mask_ = to_tensor(vary);
  }

  QueryResult explain(const std::vector<double>& x, int target,
                      Rng& /*rng: deterministic method*/) const override {
    const dice::Deadline deadline(options_.time_limit);
    const auto k = static_cast<std::int64_t>(std::max(1, options_.n_cfs));
    std::string note;
    const torch::Tensor x_enc = encode(x);  // [n_in]

    torch::Tensor v;  // [k, n_in]
    {
      torch::NoGradGuard no_grad;
      const auto steps = torch::arange(k, torch::kFloat32).unsqueeze(1) * kInitStep;  // [k, 1]
      v = (x_enc.unsqueeze(0) + steps * vary_mask_.unsqueeze(0)).clone();
    }
    v.set_requires_grad(true);
    torch::optim::Adam optimizer({v}, torch::optim::AdamOptions(options_.dice.gradient_learning_rate));

    int iteration = 0;
    double loss_diff = 1.0, previous_loss = 0.0;
    int converge_iter = 0;
    bool all_valid = false;      // rounded CFs of the current v all valid
    double best_distance = 100;  // min_dist_from_threshold
    std::vector<Row> backup;
    auto stop = [&] {
      if (iteration < options_.dice.gradient_min_iter) return false;
      if (iteration >= options_.dice.gradient_max_iter) return true;
      if (loss_diff <= kLossDiffThreshold) {
        ++converge_iter;
        return converge_iter >= kLossConvergeMaxIter && all_valid;
      }
      converge_iter = 0;
      return false;
    };
    while (!stop()) {
      if (deadline.passed()) {
        note = fmt::format("time limit hit after {} iterations", iteration);
        break;
      }
      const torch::Tensor loss = compute_loss(v, x_enc, target, k);
      torch::Tensor grad = torch::autograd::grad({loss}, {v})[0];
      v.mutable_grad() = grad * vary_mask_;  // freeze immutable features
      optimizer.step();
      {
        torch::NoGradGuard no_grad;
        v.copy_(torch::max(torch::min(v, maxx_), minx_));
      }
      const double loss_value = loss.item<double>();
      loss_diff = std::abs(loss_value - previous_loss);
      previous_loss = loss_value;
      ++iteration;

      const std::vector<Row> rounded = round_off(v, x);
      const std::vector<double> p1 = predict(rounded);
      all_valid = std::all_of(p1.begin(), p1.end(), [&](double p) { return dice::is_valid(p, target); });
      if (all_valid) {
        double mean_distance = 0.0;
        for (double p : p1) mean_distance += std::abs(p - 0.5) / static_cast<double>(p1.size());
        if (mean_distance < best_distance) {
          best_distance = mean_distance;
          backup = rounded;
        }
      }
    }

    std::vector<Row> cfs = round_off(v, x);
    const std::vector<double> p1 = predict(cfs);
    const bool final_valid =
        std::all_of(p1.begin(), p1.end(), [&](double p) { return dice::is_valid(p, target); });
    if (!final_valid && !backup.empty()) cfs = backup;
    dice::posthoc_sparsity(data_, *context_.f, x, target, cfs, deadline);
    for (auto& cf : cfs) dice::round_continuous(data_, x, cf);
    return dice::finish(data_, context_, x, target, std::move(cfs), note);
  }

 private:
  struct Group {
    std::size_t offset = 0, width = 0;
  };

  // Raw row -> DiCE's space: [n_in].
  torch::Tensor encode(const std::vector<double>& x) const {
    std::vector<double> out(n_in_, 0.0);
    const auto& features = module_.encoder->features();
    for (std::size_t j = 0; j < data_.d; ++j) {
      const auto& e = features[j];
      if (e.categorical) {
        const double code = x[j];
        if (code >= 0 && code < static_cast<double>(e.width()) && code == std::floor(code))
          out[e.offset + static_cast<std::size_t>(code)] = 1.0;
      } else {
        out[e.offset] = (x[j] - data_.train_min[j]) / range_[j];
      }
    }
    return to_tensor(out);
  }

  // v: [k, n_in] -> scalar loss (autograd flows to v).
  torch::Tensor compute_loss(const torch::Tensor& v, const torch::Tensor& x_enc, int target,
                             std::int64_t k) const {
    torch::nn::Sequential net = module_.net;  // forward() is non-const; the handle shares the module
    const torch::Tensor logits = net->forward(v * scale_ + shift_).squeeze(1);  // [k]
    const torch::Tensor p = torch::sigmoid(logits);
    const torch::Tensor a = torch::abs(p - 1e-6);
    const torch::Tensor dice_logits = torch::log(a / (1 - a));
    const double sign = 2.0 * target - 1.0;
    const torch::Tensor yloss = torch::relu(1 - sign * dice_logits).sum() / static_cast<double>(k);

    const torch::Tensor prox = ((v - x_enc).abs() * weights_).sum() / static_cast<double>(n_in_ * k);

    torch::Tensor loss = yloss + options_.dice.gradient_proximity_weight * prox;
    if (k > 1 && options_.dice.gradient_diversity_weight > 0) {
      const torch::Tensor dist = ((v.unsqueeze(1) - v.unsqueeze(0)).abs() * weights_).sum(-1);  // [k, k]
      const torch::Tensor kernel = 1.0 / (1.0 + dist) + 1e-4 * torch::eye(k, torch::kFloat32);
      loss = loss - options_.dice.gradient_diversity_weight * torch::det(kernel);
    }
    if (!groups_.empty()) {
      torch::Tensor reg = torch::zeros({}, torch::kFloat32);
      for (const auto& g : groups_) {
        const auto levels =
            v.narrow(1, static_cast<std::int64_t>(g.offset), static_cast<std::int64_t>(g.width));
        reg = reg + (levels.sum(1) - 1.0).pow(2).sum();
      }
      loss = loss + options_.dice.gradient_categorical_penalty * reg;
    }
    return loss;
  }

  // round_off_cfs: v -> raw rows, continuous rounded to precision, categorical
  // argmax over the permitted codes (first on ties), immutables from x.
  std::vector<Row> round_off(const torch::Tensor& v, const std::vector<double>& x) const {
    torch::NoGradGuard no_grad;
    const torch::Tensor c = v.detach().contiguous();
    const auto acc = c.accessor<float, 2>();
    const auto& features = module_.encoder->features();
    std::vector<Row> rows(static_cast<std::size_t>(c.size(0)), Row(data_.d));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto ii = static_cast<std::int64_t>(i);
      for (std::size_t j = 0; j < data_.d; ++j) {
        const auto& e = features[j];
        if (!data_.is_varied[j]) {
          rows[i][j] = x[j];
        } else if (e.categorical) {
          int best = -1;
          float best_value = 0;
          for (int code : data_.allowed[j]) {
            if (code < 0 || static_cast<std::size_t>(code) >= e.width()) continue;
            const float value = acc[ii][static_cast<std::int64_t>(e.offset) + code];
            if (best < 0 || value > best_value || (value == best_value && code < best)) {
              best = code;
              best_value = value;
            }
          }
          rows[i][j] = best >= 0 ? best : x[j];
        } else {
          const double raw = data_.train_min[j] +
                             static_cast<double>(acc[ii][static_cast<std::int64_t>(e.offset)]) * range_[j];
          rows[i][j] = dice::round_to(raw, data_.precision[j]);
        }
      }
    }
    return rows;
  }

  std::vector<double> predict(const std::vector<Row>& rows) const {
    data::Matrix m(rows.size(), data_.d);
    for (std::size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), m.row(i));
    return context_.f->predict_proba(m);
  }

  CfOptions options_;
  dice::DiceData data_;
  clf::NnModule module_{torch::nn::Sequential(nullptr), nullptr};
  std::size_t n_in_ = 0;
  std::vector<double> range_;  // [d] de-normalisation range (training max - min, or 1)
  std::vector<Group> groups_;  // one-hot blocks of the categorical features
  torch::Tensor scale_, shift_, weights_, minx_, maxx_, vary_mask_;  // [n_in] each
};

}  // namespace

std::unique_ptr<Generator> make_dice_gradient(const CfOptions& options) {
  return std::make_unique<DiceGradient>(options);
}

}  // namespace sensecf::cf
