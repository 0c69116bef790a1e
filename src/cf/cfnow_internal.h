// CFNOW internals shared by cfnow.cpp (generator, factory), cfnow_search.cpp
// (greedy and random finders) and cfnow_finetune.cpp (tabu-search fine-tune of
// L1). Not a public header: only the three CFNOW sources include it.
//
// Vocabulary (cfnow 0.0.6 names in parentheses):
//   d        number of features (schema size); rows are [d] raw values
//   anchor   the query projected onto the permitted ranges; the search starts
//            there and the fine-tune reverts towards it (the factual)
//   score    mp1c, "probability of being a CF" (mp1c); CF iff the black box
//            predicts another class than the query's
//   found    the unique CFs found so far, in order of discovery (cf_unique)
//   tabu     features forbidden to move (tabu_list), a bounded FIFO
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <set>
#include <string>
#include <vector>

#include "sensecf/cf/generator.h"
#include "sensecf/core/random.h"
#include "sensecf/data/dataset.h"

namespace sensecf::cf::cfnow_internal {

using Clock = std::chrono::steady_clock;

// Seconds as a clock duration, capped at ~31 years so a huge time limit cannot overflow.
inline Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::min(s, 1e9)));
}

enum class Strategy { kGreedy, kRandom, kRandomSequential };

// The effective settings of one generator (CfOptions with CFNOW's defaults resolved).
struct Settings {
  Strategy strategy = Strategy::kRandom;
  int it_max = 5000;
  double change_factor = 0.1;  // ft_change_factor
  int ft_it_max = 5000;        // < 0: fine-tune off (sensecf addition)
  double size_tabu = 0.0;      // as in CfOptions; resolved per problem by tabu_size()
  double ft_threshold_distance = 1e-5;
  int threshold_changes = 100;
  double increase_threshold = 0.0;  // cfnow's default; not an option in sensecf
  int n_cfs = 1;                    // count_cf
  double time_limit = 120.0;        // seconds per query (limit_seconds)
};

// One query: the black box as CFNOW's score, the constraints, the clock.
class Problem {
 public:
  Problem(const BlackBox& f, const data::Schema& schema, const std::vector<double>& x, int fact_class,
          Clock::time_point deadline);

  const data::Schema& schema() const { return schema_; }
  const std::vector<double>& x() const { return x_; }
  const std::vector<double>& anchor() const { return anchor_; }
  const std::vector<std::size_t>& movable() const { return movable_; }
  std::size_t n_features() const { return x_.size(); }
  bool timed_out() const { return Clock::now() >= deadline_; }
  Clock::time_point deadline() const { return deadline_; }

  // P(y = 1) for rows: [n][d], in ONE predict_proba call.
  std::vector<double> predict(const std::vector<std::vector<double>>& rows) const;
  // mp1c from P(y = 1): two columns [1 - p1, p1], "multiclass nonspecific":
  // 1 / (1 + exp(p_fact - p_other)).
  double score(double p1) const;
  // CF iff the black box (P(y=1) > 0.5 -> class 1) predicts another class than
  // the query's. Differs from cfnow's `mp1c >= 0.5` only at p1 == 0.5 exactly.
  bool is_cf(double p1) const { return (p1 > 0.5 ? 1 : 0) != fact_class_; }
  // The objective (_obj_manhattan) in CFNOW's encoded space: sum over numeric
  // features of |c_j - x_j| on raw values; a changed binary categorical counts 1
  // and a changed k-category one 2 (its one-hot group differs in two columns).
  double l1(const std::vector<double>& c) const;
  // Per-feature distance of the fine-tune's change factor: |c_j - x_j| for a
  // numeric feature, 1 for a changed categorical (one one-hot column).
  double feature_distance(const std::vector<double>& c, std::size_t j) const;

 private:
  const BlackBox& f_;
  const data::Schema& schema_;
  std::vector<double> x_;
  std::vector<double> anchor_;
  std::vector<std::size_t> movable_;  // mutable features, ascending
  int fact_class_;
  Clock::time_point deadline_;
};

// The unique CFs found so far, with P(y = 1) for each, in order of discovery.
struct Found {
  std::vector<std::vector<double>> rows;
  std::vector<double> p1;
  std::set<std::vector<double>> seen;

  std::size_t size() const { return rows.size(); }
  bool contains(const std::vector<double>& row) const { return seen.count(row) > 0; }
  // Adds row unless already there or it breaks a constraint; returns whether added.
  bool add(const Problem& problem, const std::vector<double>& row, double p1);
};

// A bounded FIFO of feature indices (cfnow: deque(maxlen=size_tabu)).
class TabuList {
 public:
  explicit TabuList(std::size_t capacity) : capacity_(capacity) {}
  void push(std::size_t feature);
  bool contains(std::size_t feature) const;
  bool empty() const { return items_.empty(); }

 private:
  std::size_t capacity_;
  std::deque<std::size_t> items_;
};

// Tabu capacity: size_tabu < 1 is a share of the mutable features (rounded
// half to even, like Python's round), >= 1 a count capped at n_mutable - 1;
// 0 picks cfnow's default (0.2 for random, 5 for greedy).
std::size_t tabu_size(const Settings& settings, std::size_t n_mutable);

// One move: feature j takes value `value` (a continuous step, already clamped
// to [lower, upper], or another allowed category code).
struct Move {
  std::size_t feature = 0;
  double value = 0.0;
};

// The single moves of every mutable feature at point c with `momentum`
// (_create_factual_changes), grouped by feature in ascending feature order;
// features without a move (a numeric 0, a clamped step, one allowed category)
// are left out.
std::vector<std::vector<Move>> moves_by_feature(const Problem& problem, const Settings& settings,
                                                const std::vector<double>& c, int momentum);

// Evaluates candidates: drops rows already found and duplicates (keeping the
// first; `tags` is filtered alongside), predicts them in one call, appends the
// CFs to `found` sorted by score (best first) and returns the scores of the
// kept rows (same order as the filtered `rows`). p1_out, when given, receives P(y=1).
std::vector<double> evaluate(const Problem& problem, std::vector<std::vector<double>>& rows,
                             std::vector<std::size_t>& tags, Found& found,
                             std::vector<double>* p1_out = nullptr);

// How a finder run ended.
struct FinderOutcome {
  int iterations = 0;
  bool timed_out = false;  // stopped by `deadline`
};

// Runs the strategy's finder from `start` until found.size() >= count_target,
// it_max iterations or `deadline` (cfnow: _greedy_generator / _random_generator
// with ft_time). `tabu` is shared with the caller (the fine-tune passes its own).
FinderOutcome run_finder(const Problem& problem, const Settings& settings, const std::vector<double>& start,
                         TabuList& tabu, std::size_t count_target, Found& found, Clock::time_point deadline,
                         Rng& rng);

// How the fine-tune ended.
struct FineTuneOutcome {
  bool timed_out = false;  // the query's deadline stopped it
};

// _fine_tuning: improves the best n_cfs CFs of `found` (by L1), adding every CF
// it meets to `found`.
FineTuneOutcome fine_tune(const Problem& problem, const Settings& settings, Found& found, Rng& rng);

}  // namespace sensecf::cf::cfnow_internal
