// DiCE method="genetic" (dice-ml 0.12 explainer_interfaces/dice_genetic.py,
// "similar to GeCo"; notes: docs/cf-baselines.md and the original sources).
//
// Individuals are raw rows (categorical codes = dice-ml's label encoding).
// population_size = 10 n_cfs, initialised from the target-class training rows
// nearest to the query (kd-tree init; immutables set to the query, values out of
// range replaced) and topped up with random valid rows. Each generation: unique
// rows (lexicographic order, as np.unique), loss = yloss + 0.2 prox + 0.2 spars
//   yloss = max(0, p_other - p_target)                                (hinge)
//   prox  = sum_cont w_f |minmax(c_f) - minmax(x_f)| / sum_cont w_f,  w_f = round(1/MAD_f, 2)
//   spars = #(c_j != x_j) / d
// the n_cfs best rows survive (elitism), the rest are children of two parents
// from the fitter half: each gene from parent 1 (p 0.4), parent 2 (p 0.4) or
// mutated (p 0.2). Stops after 5 consecutive generations whose best loss moved
// <= 0.01 while all elites were valid, or at dice_max_iterations. The final
// elites are rounded to the feature precision; invalid ones are dropped. No
// post-hoc sparsity (dice-ml's genetic never calls it).
//
// Deliberate differences from dice-ml (bug fixes):
//   - mutation of a continuous gene is uniform(lo, hi); dice-ml draws
//     uniform(lo, lo), i.e. always the lower bound (open PR #472);
//   - parents come from the fitness-sorted top half; dice-ml indexes the
//     lexicographically sorted population, so "top half" is the rows with the
//     smallest first feature values;
//   - the random top-up of the initial population tries at most
//     kInitTriesPerIndividual * population_size rows (and respects the time
//     limit); dice-ml's rejection loop never ends when valid rows are rare
//     (issues #168, #226, #354). The GA then continues with what exists;
//   - with fewer kd-tree rows than population_size, dice-ml keeps all-zero rows
//     in the population (np.zeros never overwritten); we do not;
//   - with a population of one row dice-ml's randrange(0) raises; we draw from
//     the best row;
//   - all proximity weights zero (every MAD > 200) gives 0/0 in dice-ml; we use 0;
//   - final elites are rounded before the validity check (dice-ml checks, then
//     rounds), so every returned CF is valid as returned;
//   - all randomness comes from the query's Rng (dice-ml uses the unseeded
//     global random / np.random); the time limit ends the generations early;
//   - the elites' predictions are taken from the generation's batch prediction
//     instead of a second black-box call (same numbers).
// Not here: regression targets, diversity loss (dice-ml removed it, PR #102).
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "dice_common.h"
#include "sensecf/cf/dice.h"

namespace sensecf::cf {
namespace {

constexpr double kStopThreshold = 1e-2;  // dice-ml's `thresh`
constexpr int kStopGenerations = 5;      // stop_cnt >= 5
constexpr int kInitTriesPerIndividual = 100;
constexpr std::size_t kInitBatch = 100;  // random-init rows predicted per black-box call

using Row = std::vector<double>;

class DiceGenetic final : public Generator {
 public:
  explicit DiceGenetic(const CfOptions& options) : options_(options) {}
  std::string name() const override { return "dice-genetic"; }

  void prepare(const Context& context) override {
    Generator::prepare(context);
    data_ = dice::build_dice_data(context, options_.dice, name());
    predictions_ = dice::predict_training_rows(context);
    weights_.assign(data_.d, 0.0);
    weight_sum_ = 0.0;
    for (std::size_t j : data_.continuous) {
      weights_[j] = std::round(100.0 / data_.mad[j]) / 100.0;  // round(1 / MAD, 2)
      weight_sum_ += weights_[j];
    }
  }

  QueryResult explain(const std::vector<double>& x, int target, Rng& rng) const override {
    const dice::Deadline deadline(options_.time_limit);
    const auto n_cfs = static_cast<std::size_t>(std::max(1, options_.n_cfs));
    const std::size_t population_size = 10 * n_cfs;
    std::string note;
    auto add_note = [&note](const std::string& s) { note += (note.empty() ? "" : "; ") + s; };

    std::vector<Row> population = kdtree_init(x, target, population_size, rng);
    unique_sorted(population);
    if (population.size() < population_size) {
      const std::size_t wanted = population_size - population.size();
      std::vector<Row> extra =
          random_init(x, target, wanted, kInitTriesPerIndividual * population_size, rng, deadline);
      if (extra.size() < wanted) {
        add_note(fmt::format("initial population {} of {} (random init found {} valid rows in its tries)",
                             population.size() + extra.size(), population_size, extra.size()));
      }
      population.insert(population.end(), extra.begin(), extra.end());
    }
    if (population.empty()) {
      add_note("empty initial population");
      return dice::finish(data_, context_, x, target, {}, note);
    }

    double previous_best = -std::numeric_limits<double>::infinity();
    double current_best = std::numeric_limits<double>::infinity();
    int stop_count = 0;
    bool elites_valid = false;
    int iteration = 0;
    for (; iteration < options_.dice.max_iterations; ++iteration) {
      if (std::abs(previous_best - current_best) <= kStopThreshold && elites_valid) {
        ++stop_count;
      } else {
        stop_count = 0;
      }
      if (stop_count >= kStopGenerations) break;
      if (deadline.passed()) {
        add_note(fmt::format("time limit hit after {} generations", iteration));
        break;
      }
      previous_best = current_best;
      unique_sorted(population);

      std::vector<char> valid;
      const std::vector<double> fitness = loss(population, x, target, valid);
      std::vector<std::size_t> order(population.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return fitness[a] < fitness[b]; });
      current_best = fitness[order[0]];

      std::vector<Row> next;
      elites_valid = true;
      for (std::size_t i = 0; i < std::min(n_cfs, order.size()); ++i) {
        next.push_back(population[order[i]]);
        elites_valid = elites_valid && valid[order[i]];
      }
      const std::size_t top_half = std::max<std::size_t>(1, population.size() / 2);
      for (std::size_t c = 0; c < population_size - n_cfs; ++c) {
        const Row& p1 = population[order[rng.below(top_half)]];
        const Row& p2 = population[order[rng.below(top_half)]];
        next.push_back(mate(p1, p2, x, rng));
      }
      population = std::move(next);
    }

    std::vector<Row> final_cfs(population.begin(),
                               population.begin() + static_cast<long>(std::min(n_cfs, population.size())));
    for (auto& cf : final_cfs) dice::round_continuous(data_, x, cf);
    QueryResult r = dice::finish(data_, context_, x, target, std::move(final_cfs), note);
    if (r.cfs.size() < n_cfs) {
      r.note += fmt::format("{}{} of {} CFs valid after {} generations", r.note.empty() ? "" : "; ",
                            r.cfs.size(), n_cfs, iteration);
    }
    return r;
  }

 private:
  // do_KD_init: the population_size nearest target-class training rows.
  std::vector<Row> kdtree_init(const std::vector<double>& x, int target, std::size_t population_size,
                               Rng& rng) const {
    const auto& rows = predictions_.rows[target == 1 ? 1 : 0];
    std::vector<Row> out;
    if (rows.empty()) return out;
    const auto nb = dice::nearest_rows(data_, *context_.train_x, rows, x, population_size * options_.n_cfs);
    for (std::size_t k = 0; k < std::min(population_size, nb.size()); ++k) {
      const double* r = context_.train_x->row(nb[k].row);
      Row one(data_.d);
      for (std::size_t j = 0; j < data_.d; ++j) {
        if (!data_.is_varied[j]) {
          one[j] = x[j];
        } else if (data_.in_range(j, r[j])) {
          one[j] = r[j];
        } else if (data_.in_range(j, x[j])) {
          one[j] = x[j];
        } else if (data_.is_categorical[j]) {
          one[j] = data_.allowed[j][rng.below(data_.allowed[j].size())];
        } else {
          one[j] = rng.uniform(data_.lower[j], data_.upper[j]);
        }
      }
      out.push_back(std::move(one));
    }
    return out;
  }

  // do_random_init with a bounded number of tries: rows drawn uniformly in the
  // permitted ranges (continuous rounded to precision), kept when valid.
  std::vector<Row> random_init(const std::vector<double>& x, int target, std::size_t wanted,
                               std::size_t max_tries, Rng& rng, const dice::Deadline& deadline) const {
    std::vector<Row> out;
    std::size_t tries = 0;
    while (out.size() < wanted && tries < max_tries && !deadline.passed()) {
      const std::size_t batch = std::min(kInitBatch, max_tries - tries);
      data::Matrix m(batch, data_.d);
      for (std::size_t k = 0; k < batch; ++k) {
        for (std::size_t j = 0; j < data_.d; ++j) {
          double v = x[j];
          if (data_.is_varied[j]) {
            if (data_.is_categorical[j]) {
              v = data_.allowed[j][rng.below(data_.allowed[j].size())];
            } else {
              v = std::clamp(dice::round_to(rng.uniform(data_.lower[j], data_.upper[j]), data_.precision[j]),
                             data_.lower[j], data_.upper[j]);
            }
          }
          m.at(k, j) = v;
        }
      }
      tries += batch;
      const std::vector<double> p1 = context_.f->predict_proba(m);
      for (std::size_t k = 0; k < batch && out.size() < wanted; ++k)
        if (dice::is_valid(p1[k], target)) out.emplace_back(m.row(k), m.row(k) + data_.d);
    }
    return out;
  }

  // Child of p1 and p2: per gene parent 1 (u < 0.4), parent 2 (u < 0.8) or a
  // mutation (uniform(lo, hi) / a random permitted code; immutables keep x).
  Row mate(const Row& p1, const Row& p2, const std::vector<double>& x, Rng& rng) const {
    Row child(data_.d);
    for (std::size_t j = 0; j < data_.d; ++j) {
      const double u = rng.uniform();
      if (u < 0.4) {
        child[j] = p1[j];
      } else if (u < 0.8) {
        child[j] = p2[j];
      } else if (!data_.is_varied[j]) {
        child[j] = x[j];
      } else if (data_.is_categorical[j]) {
        child[j] = data_.allowed[j][rng.below(data_.allowed[j].size())];
      } else {
        child[j] = rng.uniform(data_.lower[j], data_.upper[j]);  // dice-ml: uniform(lo, lo)
      }
    }
    return child;
  }

  double normalise(std::size_t j, double v) const {
    const double range = data_.train_max[j] - data_.train_min[j];
    return range == 0 ? 0.0 : (v - data_.train_min[j]) / range;
  }

  // Loss per row (lower is better); `valid` gets each row's validity.
  std::vector<double> loss(const std::vector<Row>& population, const std::vector<double>& x, int target,
                           std::vector<char>& valid) const {
    data::Matrix m(population.size(), data_.d);
    for (std::size_t i = 0; i < population.size(); ++i)
      std::copy(population[i].begin(), population[i].end(), m.row(i));
    const std::vector<double> p1 = context_.f->predict_proba(m);
    std::vector<double> out(population.size());
    valid.assign(population.size(), 0);
    for (std::size_t i = 0; i < population.size(); ++i) {
      const Row& c = population[i];
      const double p_target = target == 1 ? p1[i] : 1.0 - p1[i];
      const double yloss = std::max(0.0, (1.0 - p_target) - p_target);
      double prox = 0.0;
      if (weight_sum_ > 0) {
        for (std::size_t j : data_.continuous)
          prox += weights_[j] * std::abs(normalise(j, c[j]) - normalise(j, x[j]));
        prox /= weight_sum_;
      }
      std::size_t n_changed = 0;
      for (std::size_t j = 0; j < data_.d; ++j) n_changed += c[j] != x[j];
      const double spars = static_cast<double>(n_changed) / static_cast<double>(data_.d);
      out[i] = yloss + options_.dice.proximity_weight * prox + options_.dice.sparsity_weight * spars;
      valid[i] = dice::is_valid(p1[i], target);
    }
    return out;
  }

  static void unique_sorted(std::vector<Row>& rows) {
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }

  CfOptions options_;
  dice::DiceData data_;
  dice::TrainPredictions predictions_;
  std::vector<double> weights_;  // [d] round(1/MAD, 2) for continuous features, 0 else
  double weight_sum_ = 0.0;
};

}  // namespace

std::unique_ptr<Generator> make_dice_genetic(const CfOptions& options) {
  return std::make_unique<DiceGenetic>(options);
}

}  // namespace sensecf::cf
