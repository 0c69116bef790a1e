// CFNOW (de Oliveira, Sörensen & Martens, EJOR 2024), re-implemented after
// cfnow 0.0.6 `find_tabular`: a finder (greedy, random or random-sequential,
// cfnow_search.cpp) looks for CFs around the query without training data, then
// a tabu-search fine-tune (cfnow_finetune.cpp) lowers their L1 distance. This
// file holds the generator, the score, the constraints and the factory.
//
// Score: our black box gives P(y=1); like cfnow with an sklearn-style
// predict_proba it is read as two columns [1 - p1, p1] ("multiclass
// nonspecific"): mp1c = 1 / (1 + exp(p_fact - p_other)), fact = the query's
// predicted class. The target is always "not the query's class"; a target
// equal to the query's class gives no CF ("query already predicted as target").
// Objective: L1 on raw, unscaled values; a changed categorical counts as its
// one-hot encoding would in cfnow (binary 1, k levels 2).
//
// Deliberate differences from cfnow 0.0.6 (more in cfnow_search.cpp and
// cfnow_finetune.cpp):
// * Immutable features never move (cfnow has no immutables): they are left out
//   of the move set, the fine-tune, and the feature count behind the tabu size.
// * Categorical features are cfnow's 'cat' features: 2 levels = a binary flip,
//   k levels = a one-hot group (switch to another level, full revert in the
//   fine-tune); only `allowed` codes are used.
// * Continuous moves are clamped to [lower, upper] (CFs stay in range); a
//   query outside the permitted ranges is projected onto them first and the
//   search starts there (its L1 to the query differs by a constant).
// * CF iff P(y=1) > 0.5 differs from the query's class (cfnow: mp1c >= 0.5,
//   which also counts p1 == 0.5 exactly).
// * options.time_limit is a deadline per query for finder and fine-tune
//   (cfnow: limit_seconds bounds only the fine-tune); hitting it is noted.
// * Returns the n_cfs best CFs by L1 (cfnow returns all it met, sorted by L1).
// * cfnow_ft_it_max < 0 turns the fine-tune off (returns the finder's CFs,
//   sorted by L1); 0 means cfnow's default (5000 random, 1000 greedy).
// * avoid_back_original (greedy, default off) and increase_threshold (0) are
//   not options; randomness comes from the query's Rng, so runs repeat exactly.
#include "sensecf/cf/cfnow.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cfnow_internal.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::cf {

namespace cfnow_internal {

Problem::Problem(const BlackBox& f, const data::Schema& schema, const std::vector<double>& x, int fact_class,
                 Clock::time_point deadline)
    : f_(f), schema_(schema), x_(x), anchor_(x), fact_class_(fact_class), deadline_(deadline) {
  enforce_constraints(schema, x, anchor_);
  for (std::size_t j = 0; j < schema.size(); ++j) {
    if (!schema.features[j].immutable) movable_.push_back(j);
  }
}

std::vector<double> Problem::predict(const std::vector<std::vector<double>>& rows) const {
  data::Matrix m(rows.size(), x_.size());
  for (std::size_t r = 0; r < rows.size(); ++r) std::copy(rows[r].begin(), rows[r].end(), m.row(r));
  std::vector<double> p1 = f_.predict_proba(m);
  if (p1.size() != rows.size()) {
    throw Error(
        fmt::format("cfnow: the classifier returned {} probabilities for {} rows", p1.size(), rows.size()));
  }
  return p1;
}

double Problem::score(double p1) const {
  const double p_fact = fact_class_ == 1 ? p1 : 1.0 - p1;
  const double p_other = 1.0 - p_fact;
  return 1.0 / (1.0 + std::exp(p_fact - p_other));
}

namespace {

int one_hot_weight(const data::Feature& f) {
  std::size_t n_levels = f.categories.size();
  for (int code : f.allowed) n_levels = std::max(n_levels, static_cast<std::size_t>(code) + 1);
  return n_levels > 2 ? 2 : 1;
}

}  // namespace

double Problem::l1(const std::vector<double>& c) const {
  double sum = 0.0;
  for (std::size_t j = 0; j < c.size(); ++j) {
    const data::Feature& f = schema_.features[j];
    if (f.is_categorical()) {
      sum += c[j] != x_[j] ? one_hot_weight(f) : 0;
    } else {
      sum += std::abs(c[j] - x_[j]);
    }
  }
  return sum;
}

double Problem::feature_distance(const std::vector<double>& c, std::size_t j) const {
  if (schema_.features[j].is_categorical()) return c[j] != anchor_[j] ? 1.0 : 0.0;
  return std::abs(c[j] - anchor_[j]);
}

bool Found::add(const Problem& problem, const std::vector<double>& row, double row_p1) {
  if (contains(row) || count_violations(problem.schema(), problem.x(), row) != 0) return false;
  rows.push_back(row);
  p1.push_back(row_p1);
  seen.insert(row);
  return true;
}

void TabuList::push(std::size_t feature) {
  if (capacity_ == 0) return;
  if (items_.size() == capacity_) items_.pop_front();
  items_.push_back(feature);
}

bool TabuList::contains(std::size_t feature) const {
  return std::find(items_.begin(), items_.end(), feature) != items_.end();
}

std::size_t tabu_size(const Settings& settings, std::size_t n_mutable) {
  double size = settings.size_tabu;
  if (size == 0.0) size = settings.strategy == Strategy::kGreedy ? 5.0 : 0.2;
  if (size < 1.0) return static_cast<std::size_t>(std::nearbyint(size * static_cast<double>(n_mutable)));
  auto count = static_cast<std::size_t>(size);
  if (n_mutable < count) count = n_mutable == 0 ? 0 : n_mutable - 1;  // cfnow warns and caps
  return count;
}

}  // namespace cfnow_internal

namespace {

using namespace cfnow_internal;

std::string strategy_name(Strategy s) {
  switch (s) {
    case Strategy::kGreedy:
      return "greedy";
    case Strategy::kRandom:
      return "random";
    case Strategy::kRandomSequential:
      return "random-sequential";
  }
  return "?";
}

class CfnowGenerator : public Generator {
 public:
  explicit CfnowGenerator(const Settings& settings) : settings_(settings) {}

  std::string name() const override { return "cfnow-" + strategy_name(settings_.strategy); }

  QueryResult explain(const std::vector<double>& x, int target, Rng& rng) const override {
    if (context_.f == nullptr || context_.schema == nullptr) {
      throw Error(name() + ": explain() called without a black box or schema",
                  "call prepare() with a Context that sets f and schema");
    }
    const data::Schema& schema = *context_.schema;
    if (x.size() != schema.size()) {
      throw Error(fmt::format("{}: the query has {} values, the schema {} features", name(), x.size(),
                              schema.size()));
    }
    const Clock::time_point deadline = Clock::now() + seconds(settings_.time_limit);
    QueryResult result;
    const int fact_class = context_.f->predict(x);
    if (target == fact_class) {
      result.note = "query already predicted as target";
      return result;
    }
    Problem problem(*context_.f, schema, x, fact_class, deadline);
    std::vector<std::string> notes;
    if (problem.movable().empty()) {
      result.note = "no counterfactual found: every feature is immutable";
      return result;
    }
    Found found;
    if (problem.anchor() != x) {
      notes.push_back("query outside the permitted ranges: the search starts from its projection");
      const double p1 = problem.predict({problem.anchor()})[0];
      if (problem.is_cf(p1)) found.add(problem, problem.anchor(), p1);
    }

    TabuList tabu(tabu_size(settings_, problem.movable().size()));
    const auto n_cfs = static_cast<std::size_t>(settings_.n_cfs);
    const FinderOutcome finder =
        run_finder(problem, settings_, problem.anchor(), tabu, n_cfs, found, deadline, rng);
    if (finder.timed_out) {
      notes.push_back(fmt::format("time limit ({} s) reached in the finder after {} iterations",
                                  settings_.time_limit, finder.iterations));
    }
    const std::size_t n_from_finder = found.size();
    if (!finder.timed_out) {
      const FineTuneOutcome tuned = fine_tune(problem, settings_, found, rng);
      if (tuned.timed_out) {
        notes.push_back(fmt::format("time limit ({} s) reached in the fine-tune", settings_.time_limit));
      }
    }

    // The n_cfs best CFs by L1 (ties: order of discovery).
    std::vector<std::size_t> order(found.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::vector<double> l1(found.size());
    for (std::size_t i = 0; i < found.size(); ++i) l1[i] = problem.l1(found.rows[i]);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return l1[a] < l1[b]; });
    for (std::size_t k = 0; k < order.size() && k < n_cfs; ++k) {
      Counterfactual cf;
      cf.x = found.rows[order[k]];
      cf.p1 = found.p1[order[k]];
      cf.valid = problem.is_cf(cf.p1);
      result.cfs.push_back(std::move(cf));
    }
    if (result.cfs.empty()) {
      notes.insert(notes.begin(), finder.timed_out ? std::string("no counterfactual found")
                                                   : fmt::format("no counterfactual found in {} iterations",
                                                                 finder.iterations));
    } else if (result.cfs.size() < n_cfs) {
      notes.insert(notes.begin(), fmt::format("found {} of {} counterfactuals", result.cfs.size(), n_cfs));
    }
    if (n_from_finder > 0 && settings_.ft_it_max < 0) notes.push_back("fine-tune off");
    result.note = join(notes, "; ");
    return result;
  }

 private:
  Settings settings_;
};

}  // namespace

std::unique_ptr<Generator> make_cfnow(const CfOptions& options, const std::string& strategy) {
  Settings s;
  if (strategy == "greedy") {
    s.strategy = Strategy::kGreedy;
  } else if (strategy == "random") {
    s.strategy = Strategy::kRandom;
  } else if (strategy == "random-sequential") {
    s.strategy = Strategy::kRandomSequential;
  } else {
    throw UsageError("unknown CFNOW strategy '" + strategy + "'",
                     "strategies: greedy, random, random-sequential");
  }
  if (options.cfnow.it_max < 1)
    throw UsageError(fmt::format("cf.cfnow_it_max must be at least 1, got {}", options.cfnow.it_max),
                     "e.g. --cf.cfnow_it_max 5000 (the default)");
  if (!(options.cfnow.change_factor > 0))
    throw UsageError(
        fmt::format("cf.cfnow_change_factor must be positive, got {}", options.cfnow.change_factor),
        "e.g. --cf.cfnow_change_factor 0.1 (the default)");
  if (!(options.cfnow.size_tabu >= 0)) {
    throw UsageError(
        fmt::format("cf.cfnow_size_tabu must be >= 0 (0: method default), got {}", options.cfnow.size_tabu),
        "a share of the features below 1 (e.g. 0.2), a count from 1 (e.g. 5), or 0 (the default)");
  }
  if (options.cfnow.threshold_changes < 1)
    throw UsageError(
        fmt::format("cf.cfnow_threshold_changes must be at least 1, got {}", options.cfnow.threshold_changes),
        "e.g. --cf.cfnow_threshold_changes 100 (the default)");
  check_query_limits(options);
  s.it_max = options.cfnow.it_max;
  s.change_factor = options.cfnow.change_factor;
  s.ft_it_max = options.cfnow.ft_it_max != 0 ? options.cfnow.ft_it_max
                                             : (s.strategy == Strategy::kGreedy ? 1000 : 5000);
  s.size_tabu = options.cfnow.size_tabu;
  s.ft_threshold_distance = options.cfnow.ft_threshold_distance;
  s.threshold_changes = options.cfnow.threshold_changes;
  s.n_cfs = options.n_cfs;
  s.time_limit = options.time_limit;
  spdlog::debug(
      "cf: cfnow-{} (it_max {}, change_factor {}, ft_it_max {}{}, size_tabu {}, threshold_changes {})",
      strategy, s.it_max, s.change_factor, s.ft_it_max, s.ft_it_max < 0 ? " = fine-tune off" : "",
      s.size_tabu == 0 ? (s.strategy == Strategy::kGreedy ? "5 (default)" : "0.2 (default)")
                       : fmt::format("{}", s.size_tabu),
      s.threshold_changes);
  return std::make_unique<CfnowGenerator>(s);
}

}  // namespace sensecf::cf
