// DiCE method="random" (dice-ml 0.12 explainer_interfaces/dice_random.py;
// notes: docs/cf-baselines.md and the original sources).
//
// sample_size candidate rows are sampled once, feature by feature inside the
// permitted ranges; sample_size copies of the query then take one sampled value
// of a random mutable feature per round (changes accumulate), each round is
// predicted in one batch and its valid rows are collected (duplicates dropped);
// at least 2 rounds, stop once n_cfs are found; a random subset if too many;
// then post-hoc sparsity. No distance or diversity objective, as in dice-ml.
//
// Deliberate differences from dice-ml:
//   - all randomness comes from the query's Rng: features are sampled
//     independently (dice-ml's random_seed re-seeds numpy before every
//     continuous feature, so all continuous features draw the same stream, and
//     leaves the feature choice unseeded when no continuous feature varies);
//   - a sampled continuous value round(uniform(lo, hi + 10^-prec), prec) can
//     exceed hi in dice-ml; we clamp it to [lo, hi];
//   - the post-hoc CFs are rounded to the feature precision (dice-ml leaves the
//     linear search's float drift, e.g. 12.299999999999);
//   - the time limit (CfOptions::time_limit) ends the rounds early.
// Not here: regression targets, user permitted ranges / features_to_vary (the
// schema's bounds and immutables stand for them).
#include <spdlog/fmt/fmt.h>

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <set>

#include "dice_common.h"
#include "sensecf/cf/dice.h"
#include "sensecf/core/error.h"

namespace sensecf::cf {
namespace {

class DiceRandom final : public Generator {
 public:
  explicit DiceRandom(const CfOptions& options) : options_(options) {}
  std::string name() const override { return "dice-random"; }

  void prepare(const Context& context) override {
    Generator::prepare(context);
    data_ = dice::build_dice_data(context, options_.dice, name());
  }

  QueryResult explain(const std::vector<double>& x, int target, Rng& rng) const override {
    const dice::Deadline deadline(options_.time_limit);
    const std::size_t d = data_.d;
    const auto n = static_cast<std::size_t>(std::max(1, options_.dice.sample_size));
    const auto n_cfs = static_cast<std::size_t>(std::max(1, options_.n_cfs));
    if (data_.varied.empty())
      return dice::finish(data_, context_, x, target, {}, "no mutable feature to vary");

    // samples: [n, d], sampled once, column by column (get_samples).
    data::Matrix samples(n, d);
    for (std::size_t j = 0; j < d; ++j) {
      for (std::size_t k = 0; k < n; ++k) samples.at(k, j) = sample_value(j, x[j], rng);
    }

    // candidates: [n, d], copies of x that accumulate one change per round.
    data::Matrix candidates(n, d);
    for (std::size_t k = 0; k < n; ++k) std::copy(x.begin(), x.end(), candidates.row(k));
    std::vector<std::vector<double>> found;
    std::set<std::vector<double>> seen;
    std::string note;
    const std::size_t n_rounds = data_.varied.size();
    for (std::size_t round = 1; round <= n_rounds; ++round) {
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t j = data_.varied[rng.below(data_.varied.size())];
        candidates.at(k, j) = samples.at(k, j);
      }
      const std::vector<double> p1 = context_.f->predict_proba(candidates);
      for (std::size_t k = 0; k < n; ++k) {
        if (!dice::is_valid(p1[k], target)) continue;
        std::vector<double> row(candidates.row(k), candidates.row(k) + d);
        if (seen.insert(row).second) found.push_back(std::move(row));  // drop_duplicates keeps the first
      }
      if (round >= 2 && found.size() >= n_cfs) break;
      if (deadline.passed()) {
        note = fmt::format("time limit hit after {} of {} rounds", round, n_rounds);
        break;
      }
    }
    if (found.size() > n_cfs) {  // DataFrame.sample(total_CFs): a random subset in sampled order
      std::vector<std::size_t> index(found.size());
      for (std::size_t i = 0; i < index.size(); ++i) index[i] = i;
      for (std::size_t i = 0; i < n_cfs; ++i) std::swap(index[i], index[i + rng.below(index.size() - i)]);
      std::vector<std::vector<double>> subset;
      for (std::size_t i = 0; i < n_cfs; ++i) subset.push_back(std::move(found[index[i]]));
      found = std::move(subset);
    }
    dice::posthoc_sparsity(data_, *context_.f, x, target, found, deadline);
    for (auto& cf : found) dice::round_continuous(data_, x, cf);
    if (found.size() < n_cfs && note.empty()) note = fmt::format("{} of {} CFs found", found.size(), n_cfs);
    return dice::finish(data_, context_, x, target, std::move(found), note);
  }

 private:
  // One sampled value of feature j (get_samples / get_continuous_samples).
  double sample_value(std::size_t j, double x_j, Rng& rng) const {
    if (!data_.is_varied[j]) return x_j;
    if (data_.is_categorical[j]) {
      const auto& allowed = data_.allowed[j];
      return allowed[rng.below(allowed.size())];
    }
    const double lo = data_.lower[j], hi = data_.upper[j];
    const int prec = data_.precision[j];
    if (prec == 0) {  // np.random.randint(lo, hi + 1)
      const double a = std::ceil(lo), b = std::floor(hi);
      if (b < a) return std::clamp(x_j, lo, hi);
      return a + static_cast<double>(rng.below(static_cast<std::uint64_t>(b - a) + 1));
    }
    const double v = dice::round_to(rng.uniform(lo, hi + std::pow(10.0, -prec)), prec);
    return std::clamp(v, lo, hi);
  }

  CfOptions options_;
  dice::DiceData data_;
};

}  // namespace

std::unique_ptr<Generator> make_dice_random(const CfOptions& options) {
  return std::make_unique<DiceRandom>(options);
}

}  // namespace sensecf::cf
