// CFNOW's fine-tune (cfnow 0.0.6 `_fine_tune.py: _fine_tuning`): a tabu search
// that walks each of the best n_cfs CFs back towards the query to lower L1.
//
// Per CF c (budget time_limit / n_cfs seconds, at most ft_it_max iterations):
//   D      = changed mutable features not in the tabu list whose full revert is
//            not already a found CF (numeric: |c_j - x_j| >= ft_threshold_distance)
//   factor = per j in D, from pd_j = score(c) - score(c with j reverted):
//            pd_j / dist_j when pd_j >= 0 (0 when dist_j = 0), pd_j * dist_j otherwise
//   step   = numeric: c_j += change_factor * (x_j - c_j); categorical: full revert
//   c      = the step of argmin factor; every stepped row that is a CF joins `found`
//   when c is no CF any more: its feature enters the tabu list and the finder
//   runs again from c (with that tabu list) until one more CF is found; c
//   becomes the new CF with the lowest L1.
// Two predict_proba calls per iteration (reverts, steps), one row per feature in D.
//
// Deliberate differences from cfnow:
// * An empty D ends this CF's fine-tune (cfnow warns and repeats the same
//   no-op iteration until ft_it_max: same result, less time).
// * After the finder re-run, c's score is the new CF's (cfnow keeps the score
//   of the non-CF point, which then biases pd_j of the next iteration).
// * The query's deadline bounds everything, besides cfnow's per-CF budget.
// * "All features categorical and L1 minimal" (cfnow: all binary and L1 == 1,
//   or all one-hot and L1 == 2) is "all categorical and one feature changed".
#include <algorithm>
#include <numeric>

#include "cfnow_internal.h"

namespace sensecf::cf::cfnow_internal {

namespace {

std::size_t n_changed(const Problem& problem, const std::vector<double>& c) {
  std::size_t n = 0;
  for (std::size_t j = 0; j < c.size(); ++j) n += c[j] != problem.anchor()[j] ? 1 : 0;
  return n;
}

}  // namespace

FineTuneOutcome fine_tune(const Problem& problem, const Settings& settings, Found& found, Rng& rng) {
  FineTuneOutcome outcome;
  if (settings.ft_it_max < 0 || found.size() == 0) return outcome;
  const data::Schema& schema = problem.schema();
  const std::vector<double>& anchor = problem.anchor();

  // The CFs to improve: the n_cfs best of the finder's output by L1 (ties keep
  // the order of discovery).
  std::vector<std::size_t> order(found.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<double> l1(found.size());
  for (std::size_t i = 0; i < found.size(); ++i) l1[i] = problem.l1(found.rows[i]);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return l1[a] < l1[b]; });
  order.resize(std::min<std::size_t>(order.size(), static_cast<std::size_t>(settings.n_cfs)));
  std::vector<std::vector<double>> starts;
  std::vector<double> start_p1;
  for (std::size_t i : order) {
    starts.push_back(found.rows[i]);
    start_p1.push_back(found.p1[i]);
  }

  bool all_categorical = true;
  for (const auto& f : schema.features) all_categorical = all_categorical && f.is_categorical();
  const std::size_t size_tabu = tabu_size(settings, problem.movable().size());
  const Clock::duration per_cf_budget = seconds(settings.time_limit / settings.n_cfs);
  const Clock::duration finder_budget = seconds(settings.time_limit);

  for (std::size_t s = 0; s < starts.size(); ++s) {
    const Clock::time_point t0 = Clock::now();
    const Clock::time_point ft_end = std::min(t0 + per_cf_budget, problem.deadline());
    const Clock::time_point finder_end = std::min(t0 + finder_budget, problem.deadline());
    TabuList tabu(size_tabu);
    std::vector<double> c = starts[s];
    double c_score = problem.score(start_p1[s]);

    for (int i = 0; i < settings.ft_it_max; ++i) {
      if (Clock::now() >= ft_end) {
        outcome.timed_out = outcome.timed_out || problem.timed_out();
        break;
      }
      if (all_categorical && n_changed(problem, c) == 1) break;  // nothing smaller exists

      // Full reverts of the changed features (D).
      std::vector<std::size_t> features;
      std::vector<std::vector<double>> reverts;
      for (std::size_t j : problem.movable()) {
        const double dist = problem.feature_distance(c, j);
        const bool numeric = !schema.features[j].is_categorical();
        if (dist == 0.0 || (numeric && dist < settings.ft_threshold_distance)) continue;
        if (tabu.contains(j)) continue;
        std::vector<double> revert = c;
        revert[j] = anchor[j];
        if (found.contains(revert)) continue;
        features.push_back(j);
        reverts.push_back(std::move(revert));
      }
      if (features.empty()) break;

      const std::vector<double> p_revert = problem.predict(reverts);
      std::size_t chosen = 0;
      double best_factor = 0.0;
      for (std::size_t k = 0; k < features.size(); ++k) {
        const double dist = problem.feature_distance(c, features[k]);
        const double pd = c_score - problem.score(p_revert[k]);
        const double factor = pd >= 0 ? (dist == 0 ? 0.0 : pd / dist) : pd * dist;
        if (k == 0 || factor < best_factor) {
          best_factor = factor;
          chosen = k;
        }
      }

      // Partial steps back (numeric) or full reverts (categorical), one batch.
      std::vector<std::vector<double>> steps = std::move(reverts);
      for (std::size_t k = 0; k < features.size(); ++k) {
        const std::size_t j = features[k];
        if (!schema.features[j].is_categorical()) {
          steps[k][j] = c[j] + settings.change_factor * (anchor[j] - c[j]);
        }
      }
      const std::vector<double> p_step = problem.predict(steps);
      for (std::size_t k = 0; k < steps.size(); ++k) {
        if (problem.is_cf(p_step[k])) found.add(problem, steps[k], p_step[k]);
      }
      c = steps[chosen];
      c_score = problem.score(p_step[chosen]);

      if (!problem.is_cf(p_step[chosen])) {
        // Left the CF region: forbid that feature and search a CF again from c.
        tabu.push(features[chosen]);
        const std::size_t n_before = found.size();
        const FinderOutcome rerun =
            run_finder(problem, settings, c, tabu, n_before + 1, found, finder_end, rng);
        if (rerun.timed_out && problem.timed_out()) outcome.timed_out = true;
        if (found.size() > n_before) {
          std::size_t best = n_before;
          double best_l1 = problem.l1(found.rows[n_before]);
          for (std::size_t k = n_before + 1; k < found.size(); ++k) {
            const double d = problem.l1(found.rows[k]);
            if (d < best_l1) {
              best_l1 = d;
              best = k;
            }
          }
          c = found.rows[best];
          c_score = problem.score(found.p1[best]);
        }
      }
    }
  }
  return outcome;
}

}  // namespace sensecf::cf::cfnow_internal
