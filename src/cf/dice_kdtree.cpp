// DiCE method="kdtree" (dice-ml 0.12 explainer_interfaces/dice_KD.py, "similar
// to CFProto"; notes: docs/cf-baselines.md and the original sources).
//
// D* = training rows the model predicts as the target class. The K =
// min(|D*|, 10 n_cfs) rows of D* nearest to the query (Euclidean on raw
// continuous values + one-hot categoricals) are scored by minmax(distance) +
// sparsity_weight * minmax(#changed features), sparsity_weight = 1 (dice-ml's
// kdtree default; DiceOptions::sparsity_weight is the genetic method's), and
// accepted in score order when they keep the immutable features, lie in the
// permitted ranges and are no duplicate, up to n_cfs. Then post-hoc sparsity and
// rounding to the feature precision. Before post-hoc every CF is a training row,
// taken as dice-ml's training frame holds it (float32 columns, stored_row): the
// post-hoc steps start from, and the rounding applies to, the same values as
// dice-ml's (4.4773 stepped towards 4.5109 stops at 4.5099, 3.85 rounds to 3.8).
//
// Deliberate differences from dice-ml:
//   - the training set is predicted once in prepare(), not once per query (same
//     rows, far fewer black-box calls);
//   - the nearest rows come from an exact brute-force search with ties broken
//     by row order (sklearn's KDTree is exact too; its tie order is unspecified),
//     and the score sort is stable (pandas' quicksort is not);
//   - dice-ml issue #303 (query dummies in a different column order than the
//     tree's, so purely categorical data gave the same CFs for every query) does
//     not arise: distances are computed per feature on category codes, which is
//     the one-hot Euclidean distance with no column order to mismatch.
// Not here: a real kd-tree (brute force over D* is exact and cheap at our sizes).
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "dice_common.h"
#include "sensecf/cf/dice.h"

namespace sensecf::cf {
namespace {

constexpr double kSparsityWeight = 1.0;  // dice_KD.py's sparsity_weight default

// (v - min) / (max - min) over the candidates; NaN when all are equal, as pandas.
std::vector<double> minmax(const std::vector<double>& v) {
  std::vector<double> out(v.size(), std::numeric_limits<double>::quiet_NaN());
  if (v.empty()) return out;
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  const double range = *hi - *lo;
  if (range > 0)
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = (v[i] - *lo) / range;
  return out;
}

bool isclose(double a, double b) { return std::abs(a - b) <= 1e-8 + 1e-5 * std::abs(b); }  // np.isclose

class DiceKdTree final : public Generator {
 public:
  explicit DiceKdTree(const CfOptions& options) : options_(options) {}
  std::string name() const override { return "dice-kdtree"; }

  void prepare(const Context& context) override {
    Generator::prepare(context);
    data_ = dice::build_dice_data(context, options_.dice, name());
    predictions_ = dice::predict_training_rows(context);
  }

  QueryResult explain(const std::vector<double>& x, int target,
                      Rng& /*rng: deterministic method*/) const override {
    const dice::Deadline deadline(options_.time_limit);
    const auto n_cfs = static_cast<std::size_t>(std::max(1, options_.n_cfs));
    const std::vector<std::size_t>& rows = predictions_.rows[target == 1 ? 1 : 0];
    if (rows.empty()) {
      return dice::finish(data_, context_, x, target, {}, "no training row is predicted as the target class");
    }
    const data::Matrix& train = *context_.train_x;
    const auto neighbours = dice::nearest_rows(data_, train, rows, x, 10 * n_cfs);

    // Score: minmax(distance) + w * minmax(#changed features); NaN sorts last.
    std::vector<double> distance, changed;
    for (const auto& nb : neighbours) {
      const double* r = train.row(nb.row);
      int n_changed = 0;
      for (std::size_t j = 0; j < data_.d; ++j)
        n_changed += data_.is_categorical[j] ? (r[j] != x[j]) : !isclose(r[j], x[j]);
      distance.push_back(nb.distance);
      changed.push_back(n_changed);
    }
    const auto dist_n = minmax(distance), changed_n = minmax(changed);
    std::vector<double> score(neighbours.size());
    for (std::size_t i = 0; i < score.size(); ++i) score[i] = dist_n[i] + kSparsityWeight * changed_n[i];
    std::vector<std::size_t> order(neighbours.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (std::isnan(score[b])) return !std::isnan(score[a]);
      return !std::isnan(score[a]) && score[a] < score[b];
    });

    // vary_valid: immutables kept, values in range, no duplicates.
    std::vector<std::vector<double>> cfs;
    std::set<std::vector<double>> seen;
    for (std::size_t i : order) {
      if (cfs.size() == n_cfs) break;
      const double* r = train.row(neighbours[i].row);
      bool ok = true;
      for (std::size_t j = 0; j < data_.d && ok; ++j) {
        if (!data_.is_varied[j] && r[j] != x[j])
          ok = false;
        else if (!data_.in_range(j, r[j]))
          ok = false;
      }
      if (!ok) continue;
      std::vector<double> row(r, r + data_.d);
      if (seen.insert(row).second) cfs.push_back(std::move(row));
    }
    std::string note;
    if (cfs.size() < n_cfs) {
      note = fmt::format("{} of {} CFs found among the {} nearest target-class training rows", cfs.size(),
                         n_cfs, neighbours.size());
    }
    for (auto& cf : cfs) cf = data_.stored_row(cf);
    dice::posthoc_sparsity(data_, *context_.f, x, target, cfs, deadline);
    for (auto& cf : cfs) dice::round_continuous(data_, x, cf);
    return dice::finish(data_, context_, x, target, std::move(cfs), note);
  }

 private:
  CfOptions options_;
  dice::DiceData data_;
  dice::TrainPredictions predictions_;
};

}  // namespace

std::unique_ptr<Generator> make_dice_kdtree(const CfOptions& options) {
  return std::make_unique<DiceKdTree>(options);
}

}  // namespace sensecf::cf
