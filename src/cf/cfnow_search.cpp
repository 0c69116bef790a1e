// CFNOW's finders (cfnow 0.0.6 `_cf_searchers.py`): the move set, the greedy
// finder with tabu and momentum after stagnation, and the random /
// random-sequential finder that tries change sets of 1 .. n-1 features.
//
// Deliberate differences from cfnow (see also cfnow.cpp):
// * Immutable features never move; categorical features move to another
//   *allowed* code; a continuous move is clamped to [lower, upper] and dropped
//   when the clamp leaves the value unchanged.
// * Every finder loop pass counts as an iteration, also when no move is left
//   (cfnow's greedy `continue`s without counting and can spin forever).
// * The random sampler draws n distinct features (cfnow draws with replacement
//   and rejects repeated categorical picks, summing repeated numeric ones).
// * The greedy tabu entry is the feature of the best candidate (cfnow indexes
//   the unfiltered change list there, which can name another feature once
//   candidates equal to found CFs were removed).
// * The query's deadline stops every finder (cfnow: only inside fine-tune).
//
// Not here: fine-tune (cfnow_finetune.cpp), the generator (cfnow.cpp).
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <set>
#include <utility>

#include "cfnow_internal.h"

namespace sensecf::cf::cfnow_internal {

std::vector<std::vector<Move>> moves_by_feature(const Problem& problem, const Settings& settings,
                                                const std::vector<double>& c, int momentum) {
  std::vector<std::vector<Move>> groups;
  for (std::size_t j : problem.movable()) {
    const data::Feature& f = problem.schema().features[j];
    std::vector<Move> group;
    if (f.is_categorical()) {
      // Binary: the flip; k levels: the switch to each other level (one-hot group).
      for (int code : f.allowed) {
        if (static_cast<double>(code) != c[j]) group.push_back({j, static_cast<double>(code)});
      }
    } else {
      // Relative step: a value of 0 never moves (as in cfnow).
      const double v = c[j];
      const double sign = static_cast<double>((v > 0) - (v < 0));
      const double step = settings.change_factor * v + momentum * sign;
      const double up = std::min(std::max(v + step, f.lower), f.upper);
      const double down = std::min(std::max(v - step, f.lower), f.upper);
      if (up != v) group.push_back({j, up});
      if (down != v && down != up) group.push_back({j, down});
    }
    if (!group.empty()) groups.push_back(std::move(group));
  }
  return groups;
}

std::vector<double> evaluate(const Problem& problem, std::vector<std::vector<double>>& rows,
                             std::vector<std::size_t>& tags, Found& found, std::vector<double>* p1_out) {
  std::set<std::vector<double>> in_batch;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (found.contains(rows[i]) || !in_batch.insert(rows[i]).second) continue;
    if (kept != i) {
      rows[kept] = std::move(rows[i]);
      tags[kept] = tags[i];
    }
    ++kept;
  }
  rows.resize(kept);
  tags.resize(kept);
  if (kept == 0) return {};

  const std::vector<double> p1 = problem.predict(rows);
  std::vector<double> scores(kept);
  std::vector<std::size_t> cfs;
  for (std::size_t i = 0; i < kept; ++i) {
    scores[i] = problem.score(p1[i]);
    if (problem.is_cf(p1[i])) cfs.push_back(i);
  }
  std::stable_sort(cfs.begin(), cfs.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  for (std::size_t i : cfs) found.add(problem, rows[i], p1[i]);
  if (p1_out != nullptr) *p1_out = p1;
  return scores;
}

namespace {

std::size_t argmax_first(const std::vector<double>& v) {
  return static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// _greedy_generator: one single move per iteration, always to the best
// candidate (even when it is worse); after stagnation (the last 3 score
// increases sum to < 0.001) the tabu list fills with the moved features and a
// momentum grows the numeric steps.
FinderOutcome greedy(const Problem& problem, const Settings& settings, const std::vector<double>& start,
                     TabuList& tabu, std::size_t count_target, Found& found, Clock::time_point deadline) {
  constexpr std::size_t kRecent = 3;
  constexpr double kStagnation = 0.001;
  FinderOutcome outcome;
  std::deque<double> recent_increases;
  bool tabu_on = false;
  int momentum = 0;
  std::vector<double> cf_try = start;
  double score = problem.score(problem.predict({start})[0]);
  double score_increase = settings.increase_threshold + 1;
  int it = 1;
  while (found.size() < count_target && it < settings.it_max &&
         (tabu_on || score_increase >= settings.increase_threshold)) {
    if (Clock::now() >= deadline) {
      outcome.timed_out = true;
      break;
    }
    std::vector<std::vector<double>> rows;
    std::vector<std::size_t> features;  // the moved feature of each row
    for (const auto& group : moves_by_feature(problem, settings, cf_try, momentum)) {
      if (tabu.contains(group.front().feature)) continue;
      for (const Move& move : group) {
        rows.push_back(cf_try);
        rows.back()[move.feature] = move.value;
        features.push_back(move.feature);
      }
    }
    // No move left, or every candidate is a found CF: nothing changes, but the
    // pass counts so the loop ends at it_max (cfnow would spin forever here).
    const std::vector<double> scores =
        rows.empty() ? std::vector<double>{} : evaluate(problem, rows, features, found);
    if (scores.empty()) {
      ++it;
      continue;
    }
    const std::size_t best = argmax_first(scores);
    score_increase = scores[best] - score;
    cf_try = rows[best];
    score = scores[best];
    recent_increases.push_back(score_increase);
    if (recent_increases.size() > kRecent) recent_increases.pop_front();
    const double recent_sum = std::accumulate(recent_increases.begin(), recent_increases.end(), 0.0);
    if (recent_sum < kStagnation) tabu_on = true;  // never switched off again
    if (tabu_on) {
      tabu.push(features[best]);
      momentum = recent_sum < kStagnation ? momentum + 1 : 0;
    }
    ++it;
  }
  outcome.iterations = it;
  return outcome;
}

double n_choose_k(std::size_t n, std::size_t k) {
  double r = 1.0;
  for (std::size_t i = 1; i <= k; ++i) r = r * static_cast<double>(n - k + i) / static_cast<double>(i);
  return r;
}

void enumerate_change_sets(const std::vector<std::vector<Move>>& groups, std::size_t n, std::size_t first,
                           std::vector<Move>& current, std::vector<std::vector<Move>>& out) {
  if (current.size() == n) {
    out.push_back(current);
    return;
  }
  for (std::size_t g = first; g + (n - current.size()) <= groups.size(); ++g) {
    for (const Move& move : groups[g]) {
      current.push_back(move);
      enumerate_change_sets(groups, n, g + 1, current, out);
      current.pop_back();
    }
  }
}

// The change sets of n features (one move each) tried at one step
// (_generate_random_changes): all of them when there are at most `threshold`,
// otherwise up to `threshold` distinct random ones from at most 2*threshold draws.
std::vector<std::vector<Move>> change_sets(const std::vector<std::vector<Move>>& groups, std::size_t n,
                                           int threshold, Rng& rng) {
  std::vector<std::vector<Move>> out;
  const std::size_t k = groups.size();
  if (n == 0 || n > k) return out;
  const auto limit = static_cast<double>(std::max(threshold, 0));
  bool enumerate_all = false;
  if (n_choose_k(k, n) <= limit) {
    // Exact count: the n-th elementary symmetric polynomial of the move counts.
    std::vector<double> e(n + 1, 0.0);
    e[0] = 1.0;
    for (const auto& group : groups) {
      for (std::size_t m = n; m >= 1; --m) e[m] += e[m - 1] * static_cast<double>(group.size());
    }
    enumerate_all = e[n] <= limit;
  }
  if (enumerate_all) {
    std::vector<Move> current;
    enumerate_change_sets(groups, n, 0, current, out);
    return out;
  }
  std::set<std::vector<std::pair<std::size_t, std::size_t>>> seen;  // (group, move) pairs
  std::vector<std::size_t> index(k);
  for (int tries = 0; tries < 2 * threshold && static_cast<int>(out.size()) < threshold; ++tries) {
    std::iota(index.begin(), index.end(), std::size_t{0});
    for (std::size_t i = 0; i < n; ++i) {  // partial Fisher-Yates
      std::swap(index[i], index[i + rng.below(k - i)]);
    }
    std::vector<std::size_t> picked(index.begin(), index.begin() + static_cast<std::ptrdiff_t>(n));
    std::sort(picked.begin(), picked.end());
    std::vector<std::pair<std::size_t, std::size_t>> key;
    key.reserve(n);
    for (std::size_t g : picked) key.emplace_back(g, rng.below(groups[g].size()));
    if (!seen.insert(key).second) continue;
    std::vector<Move> set;
    set.reserve(n);
    for (const auto& [g, m] : key) set.push_back(groups[g][m]);
    out.push_back(std::move(set));
  }
  return out;
}

// _random_generator: per iteration, change sets of n = 1 .. n_mutable - 1
// features (never all at once, as in cfnow) around cf_try; momentum grows by
// one per iteration. Sequential: cf_try moves to the best candidate of each step.
FinderOutcome random_search(const Problem& problem, const Settings& settings,
                            const std::vector<double>& start, TabuList& tabu, std::size_t count_target,
                            Found& found, Clock::time_point deadline, Rng& rng) {
  FinderOutcome outcome;
  const bool sequential = settings.strategy == Strategy::kRandomSequential;
  const std::size_t n_mutable = problem.movable().size();
  std::vector<double> cf_try = start;
  int momentum = 0;
  int it = 1;
  while (found.size() < count_target && it < settings.it_max && !outcome.timed_out) {
    for (std::size_t n = 1; n < n_mutable; ++n) {
      if (Clock::now() >= deadline) {
        outcome.timed_out = true;
        break;
      }
      const auto groups = moves_by_feature(problem, settings, cf_try, momentum);
      std::vector<std::vector<double>> rows;
      for (const auto& set : change_sets(groups, n, settings.threshold_changes, rng)) {
        bool touches_tabu = false;
        for (const Move& move : set) touches_tabu = touches_tabu || tabu.contains(move.feature);
        if (touches_tabu) continue;
        rows.push_back(cf_try);
        for (const Move& move : set) rows.back()[move.feature] = move.value;
      }
      if (rows.empty()) continue;
      std::vector<std::size_t> tags(rows.size(), 0);
      const std::vector<double> scores = evaluate(problem, rows, tags, found);
      if (scores.empty()) continue;
      if (sequential) cf_try = rows[argmax_first(scores)];
      if (found.size() >= count_target) break;
    }
    ++momentum;
    ++it;
  }
  outcome.iterations = it;
  return outcome;
}

}  // namespace

FinderOutcome run_finder(const Problem& problem, const Settings& settings, const std::vector<double>& start,
                         TabuList& tabu, std::size_t count_target, Found& found, Clock::time_point deadline,
                         Rng& rng) {
  if (settings.strategy == Strategy::kGreedy) {
    return greedy(problem, settings, start, tabu, count_target, found, deadline);
  }
  return random_search(problem, settings, start, tabu, count_target, found, deadline, rng);
}

}  // namespace sensecf::cf::cfnow_internal
