// NICE, as NICEx 0.2.3 (DBrughmans/NICE) behaves; notes in
// docs/cf-baselines.md.
//
//   prepare: predict the training rows once; candidates = correctly classified
//            rows (cf.nice_justified) or all; HEOM scales from the training rows.
//   explain: NUN = the candidate of the target class nearest to x in HEOM
//            (first on ties). "none" returns it; the rewards start from c = x
//            and copy one NUN feature per step, the one with the best reward,
//            until f(c) is the target class (at most d steps, one batched
//            predict_proba per step).
//
// HEOM here is NICEx's: sum over numeric |a - b| / scale (numpy's pairwise
// summation order) + number of differing categorical codes; no square root.
//
// Deliberate differences from NICEx, all about sensecf's constraints (NICEx
// knows no immutable features or permitted ranges):
//  * Only mutable features are ever copied from the NUN; the CF keeps x's
//    immutable values. The NUN is still chosen by HEOM over all features. When
//    copying every mutable feature of the NUN does not reach the target class
//    ("none"; for the rewards: the path ends there without having reached it),
//    the query gets no CF and a note, never an invalid CF. So the rewards find
//    a CF whenever "none" does, and sometimes when it does not (a valid point
//    on the way), unlike NICEx where all four always succeed.
//  * Candidates whose mutable values break the schema's ranges/allowed codes
//    are left out of the pool (none are when the schema's bounds were learned
//    from the training rows), and a mutable value of x that breaks them is
//    replaced by the NUN's before the search, so every CF has zero
//    count_violations (an immutable value of x outside its range remains the
//    caller's concern).
//  * NICEx takes at least one step even when x is already of the target class
//    and fails on an empty difference set; here a step with nothing left to
//    copy ends the search (c if it is of the target class, else no CF).
//  * p(c) is taken from the batch in which c was chosen instead of a fresh
//    single-row prediction (same model, one call per step).
//  * cf.time_limit is checked after each step (NICEx has none); NICE needs at
//    most d steps, so it only matters for very slow black boxes.
// Not here: multi-class targets, several CFs per query (NICE gives one).
#include "sensecf/cf/nice.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "sensecf/cf/autoencoder.h"
#include "sensecf/core/error.h"

namespace sensecf::cf {
namespace {

constexpr double kEps = 1e-11;  // NICEx's eps: scale floor and proximity denominator

// np.sum of a contiguous double array: numpy's pairwise summation (sequential
// below 8 values, 8 accumulators up to 128, halves above).
double numpy_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_sum(a, n2) + numpy_sum(a + n2, n - n2);
}

// np.argmax: first maximum; a NaN wins at its first position.
std::size_t numpy_argmax(const std::vector<double>& v) {
  std::size_t best = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) return i;
    if (v[i] > v[best]) best = i;
  }
  return best;
}

// f's probability of class `target` from P(y = 1).
double p_target(double p1, int target) { return target == 1 ? p1 : 1.0 - p1; }
// BlackBox::predict's rule (also NICEx's argmax over [1 - p, p]).
int predicted_class(double p1) { return p1 > 0.5 ? 1 : 0; }

class NiceGenerator final : public Generator {
 public:
  NiceGenerator(const CfOptions& options, std::string reward) : options_(options), reward_(std::move(reward)) {}

  std::string name() const override { return "nice-" + reward_; }

  void prepare(const Context& context) override {
    Generator::prepare(context);
    if (!context.f || !context.schema || !context.train_x) {
      throw Error("nice: the context needs the black box, the schema and the training rows");
    }
    const data::Matrix& train = *context.train_x;
    const data::Schema& schema = *context.schema;
    d_ = schema.size();
    if (train.n_cols != d_) {
      throw Error(fmt::format("nice: training rows have {} features, the schema has {}", train.n_cols, d_));
    }
    if (train.n_rows == 0) throw Error("nice: no training rows");
    if (options_.nice.justified && (!context.train_y || context.train_y->size() != train.n_rows)) {
      throw Error("nice: justified counterfactuals need one training label per training row",
                  "pass the training labels in Context::train_y, or set cf.nice_justified = false");
    }

    numeric_.clear();
    categorical_.clear();
    mutable_.clear();
    for (std::size_t j = 0; j < d_; ++j) {
      (schema.features[j].is_categorical() ? categorical_ : numeric_).push_back(j);
      if (!schema.features[j].immutable) mutable_.push_back(j);
    }

    // Numeric scales over all training rows: max - min, or population std.
    scale_.assign(numeric_.size(), 1.0);
    for (std::size_t k = 0; k < numeric_.size(); ++k) {
      const std::size_t j = numeric_[k];
      double s = 0.0;
      if (options_.nice.normalization == "minmax") {
        double lo = train.at(0, j), hi = train.at(0, j);
        for (std::size_t r = 1; r < train.n_rows; ++r) {
          lo = std::min(lo, train.at(r, j));
          hi = std::max(hi, train.at(r, j));
        }
        s = hi - lo;
      } else if (options_.nice.normalization == "std") {
        double mean = 0.0;
        for (std::size_t r = 0; r < train.n_rows; ++r) mean += train.at(r, j);
        mean /= static_cast<double>(train.n_rows);
        double ss = 0.0;
        for (std::size_t r = 0; r < train.n_rows; ++r) ss += (train.at(r, j) - mean) * (train.at(r, j) - mean);
        s = std::sqrt(ss / static_cast<double>(train.n_rows));
      } else {
        throw UsageError("nice: unknown cf.nice_normalization '" + options_.nice.normalization + "'",
                         "use minmax or std");
      }
      scale_[k] = s < kEps ? kEps : s;
    }

    // Candidates: correctly classified rows (justified) whose mutable values are
    // permitted, split by predicted class; training order is kept.
    const std::vector<double> p1 = context.f->predict_proba(train);
    for (auto& pool : pool_) pool.clear();
    std::size_t n_unjustified = 0, n_out_of_bounds = 0;
    for (std::size_t r = 0; r < train.n_rows; ++r) {
      const int cls = predicted_class(p1[r]);
      if (options_.nice.justified && (*context.train_y)[r] != cls) {
        ++n_unjustified;
        continue;
      }
      if (!mutable_values_permitted(train.row(r))) {
        ++n_out_of_bounds;
        continue;
      }
      pool_[cls].push_back(r);
    }

    if (reward_ == "plausibility") {
      AutoencoderOptions ae;
      ae.seed = options_.seed;
      autoencoder_ = std::make_unique<Autoencoder>();
      autoencoder_->fit(schema, train, ae);
    }
    spdlog::info("{}: {} training rows, candidates {} of class 0 and {} of class 1 ({} misclassified left out{}, "
                 "{} outside the schema's bounds left out), HEOM scaling {}",
                 name(), train.n_rows, pool_[0].size(), pool_[1].size(), n_unjustified,
                 options_.nice.justified ? "" : " (not justified: none)", n_out_of_bounds,
                 options_.nice.normalization);
  }

  QueryResult explain(const std::vector<double>& x, int target, Rng& /*rng: NICE is deterministic*/) const override {
    if (!context_.train_x) throw Error(name() + ": explain called before prepare");
    if (x.size() != d_) throw Error(fmt::format("{}: the query has {} features, expected {}", name(), x.size(), d_));
    if (target != 0 && target != 1) throw Error(fmt::format("{}: target class must be 0 or 1, got {}", name(), target));
    const auto start = std::chrono::steady_clock::now();
    QueryResult result;
    result.target = target;
    if (options_.n_cfs > 1) result.note = fmt::format("NICE returns one counterfactual per query ({} asked)", options_.n_cfs);

    const std::vector<std::size_t>& pool = pool_[target];
    if (pool.empty()) {
      add_note(result, fmt::format("no candidate training row is predicted as class {} (NICE's pool is empty)", target));
      return result;
    }
    const data::Matrix& train = *context_.train_x;
    std::size_t nun_row = pool[0];
    double best = heom(x.data(), train.row(pool[0]));
    for (std::size_t i = 1; i < pool.size(); ++i) {
      const double dist = heom(x.data(), train.row(pool[i]));
      if (dist < best) {
        best = dist;
        nun_row = pool[i];
      }
    }
    const double* nun = train.row(nun_row);

    if (reward_ == "none") {
      std::vector<double> cf = x;
      for (std::size_t j : mutable_) cf[j] = nun[j];
      if (cf != std::vector<double>(nun, nun + d_) && predicted_class(context_.f->predict_proba(cf)) != target) {
        add_note(result, no_cf_note(nun_row, target));
        return result;
      }
      result.cfs.push_back(Counterfactual{std::move(cf), 0.0, false});
      return result;
    }

    // c starts at x, with any mutable value that breaks the schema set to the NUN's.
    std::vector<double> c = x;
    const data::Schema& schema = *context_.schema;
    for (std::size_t j : mutable_) {
      if (!value_permitted(schema.features[j], c[j])) c[j] = nun[j];
    }
    double p_c = context_.f->predict_proba(c);
    double heom_c = reward_ == "proximity" ? heom(x.data(), c.data()) : 0.0;
    std::vector<std::size_t> diff;
    for (std::size_t step = 0;; ++step) {
      diff.clear();
      for (std::size_t j : mutable_) {
        if (c[j] != nun[j]) diff.push_back(j);
      }
      if (diff.empty()) {
        if (predicted_class(p_c) == target) break;
        add_note(result, no_cf_note(nun_row, target));
        return result;
      }
      // X_prune: [|D|, d], row r = c with feature diff[r] copied from the NUN.
      data::Matrix prune(diff.size(), d_);
      for (std::size_t r = 0; r < diff.size(); ++r) {
        std::copy(c.begin(), c.end(), prune.row(r));
        prune.at(r, diff[r]) = nun[diff[r]];
      }
      const std::vector<double> p_prune = context_.f->predict_proba(prune);
      std::vector<double> score(diff.size());
      std::vector<double> heom_prune;
      if (reward_ == "sparsity") {
        for (std::size_t r = 0; r < diff.size(); ++r) score[r] = p_target(p_prune[r], target) - p_target(p_c, target);
      } else if (reward_ == "proximity") {
        heom_prune.resize(diff.size());
        for (std::size_t r = 0; r < diff.size(); ++r) {
          heom_prune[r] = heom(x.data(), prune.row(r));
          score[r] = (p_target(p_prune[r], target) - p_target(p_c, target)) / (heom_prune[r] - heom_c + kEps);
        }
      } else {  // plausibility: [p_t(X_prune) - p_t(c)] * [AE(c) - AE(X_prune)]
        data::Matrix rows(diff.size() + 1, d_);  // row 0 = c, then X_prune
        std::copy(c.begin(), c.end(), rows.row(0));
        std::copy(prune.values.begin(), prune.values.end(), rows.row(1));
        const std::vector<double> ae = autoencoder_->reconstruction_error(rows);
        for (std::size_t r = 0; r < diff.size(); ++r) {
          score[r] = (p_target(p_prune[r], target) - p_target(p_c, target)) * (ae[0] - ae[r + 1]);
        }
      }
      const std::size_t pick = numpy_argmax(score);
      c.assign(prune.row(pick), prune.row(pick) + d_);
      p_c = p_prune[pick];
      if (!heom_prune.empty()) heom_c = heom_prune[pick];
      if (predicted_class(p_c) == target) break;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (elapsed > options_.time_limit) {
        add_note(result, fmt::format("time limit of {} s reached after {} steps", options_.time_limit, step + 1));
        return result;
      }
    }
    result.cfs.push_back(Counterfactual{std::move(c), 0.0, false});
    return result;
  }

 private:
  // NICEx's HEOM between rows a and b: [d] each.
  double heom(const double* a, const double* b) const {
    double terms[128];
    std::vector<double> many;
    double* t = terms;
    if (numeric_.size() > 128) {
      many.resize(numeric_.size());
      t = many.data();
    }
    for (std::size_t k = 0; k < numeric_.size(); ++k) t[k] = std::abs(b[numeric_[k]] - a[numeric_[k]]) / scale_[k];
    double n_diff = 0.0;
    for (std::size_t j : categorical_) n_diff += b[j] != a[j] ? 1.0 : 0.0;
    return numpy_sum(t, numeric_.size()) + n_diff;
  }

  static bool value_permitted(const data::Feature& f, double v) {
    if (f.is_categorical()) {
      const int code = static_cast<int>(v);
      return static_cast<double>(code) == v && std::find(f.allowed.begin(), f.allowed.end(), code) != f.allowed.end();
    }
    return v >= f.lower && v <= f.upper;
  }

  bool mutable_values_permitted(const double* row) const {
    for (std::size_t j : mutable_) {
      if (!value_permitted(context_.schema->features[j], row[j])) return false;
    }
    return true;
  }

  static std::string no_cf_note(std::size_t nun_row, int target) {
    return fmt::format(
        "copying every mutable feature of the nearest unlike neighbour (training row {}) does not reach class {}: "
        "the immutable features decide",
        nun_row, target);
  }

  static void add_note(QueryResult& result, const std::string& note) {
    result.note = result.note.empty() ? note : result.note + "; " + note;
  }

  CfOptions options_;
  std::string reward_;
  std::size_t d_ = 0;
  std::vector<std::size_t> numeric_;      // feature indices, schema order
  std::vector<std::size_t> categorical_;
  std::vector<std::size_t> mutable_;
  std::vector<double> scale_;             // [numeric_.size()]
  std::vector<std::size_t> pool_[2];      // candidate training rows by predicted class
  std::unique_ptr<Autoencoder> autoencoder_;
};

}  // namespace

std::unique_ptr<Generator> make_nice(const CfOptions& options, const std::string& reward) {
  if (reward != "none" && reward != "sparsity" && reward != "proximity" && reward != "plausibility") {
    throw UsageError("nice: unknown reward '" + reward + "'", "use none, sparsity, proximity or plausibility");
  }
  if (options.nice.normalization != "minmax" && options.nice.normalization != "std") {
    throw UsageError("nice: unknown cf.nice_normalization '" + options.nice.normalization + "'", "use minmax or std");
  }
  spdlog::debug("cf: NICE with reward '{}'", reward);
  return std::make_unique<NiceGenerator>(options, reward);
}

}  // namespace sensecf::cf
