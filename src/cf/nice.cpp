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
// HEOM here is NICEx's (cf/heom.h); the NUN search does not compute it to
// every candidate but finds the same row, first on ties (NearestRow).
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
#include "sensecf/cf/heom.h"
#include "sensecf/core/error.h"

namespace sensecf::cf {
namespace {

constexpr double kEps = 1e-11;  // NICEx's eps: the proximity reward's denominator

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

    mutable_.clear();
    for (std::size_t j = 0; j < d_; ++j) {
      if (!schema.features[j].immutable) mutable_.push_back(j);
    }
    heom_ = Heom(schema, train, options_.nice.normalization);

    // Candidates: correctly classified rows (justified) whose mutable values are
    // permitted, split by predicted class; training order is kept.
    const std::vector<double> p1 = context.f->predict_proba(train);
    std::vector<std::size_t> pool[2];
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
      pool[cls].push_back(r);
    }
    for (int cls = 0; cls < 2; ++cls) nun_[cls] = NearestRow(heom_, train, std::move(pool[cls]));

    if (reward_ == "plausibility") {
      AutoencoderOptions ae;
      ae.seed = options_.seed;
      autoencoder_ = std::make_unique<Autoencoder>();
      autoencoder_->fit(schema, train, ae);
    }
    spdlog::info("{}: {} training rows, candidates {} of class 0 and {} of class 1 ({} misclassified left out{}, "
                 "{} outside the schema's bounds left out), HEOM scaling {}",
                 name(), train.n_rows, nun_[0].size(), nun_[1].size(), n_unjustified,
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

    const NearestRow& candidates = nun_[target];
    if (candidates.empty()) {
      add_note(result, fmt::format("no candidate training row is predicted as class {} (NICE's pool is empty)", target));
      return result;
    }
    const std::size_t nun_row = candidates.nearest(x.data());
    const double* nun = context_.train_x->row(nun_row);

    if (reward_ == "none") {
      std::vector<double> cf = x;
      for (std::size_t j : mutable_) cf[j] = nun[j];
      if (!std::equal(cf.begin(), cf.end(), nun) && predicted_class(context_.f->predict_proba(cf)) != target) {
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
    double heom_c = reward_ == "proximity" ? heom_(x.data(), c.data()) : 0.0;
    // Buffers of the steps, sized for the first (the largest).
    std::vector<std::size_t> diff;
    data::Matrix prune(mutable_.size(), d_);
    std::vector<double> score, heom_prune;
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
      prune.n_rows = diff.size();
      prune.values.resize(diff.size() * d_);
      for (std::size_t r = 0; r < diff.size(); ++r) {
        std::copy(c.begin(), c.end(), prune.row(r));
        prune.at(r, diff[r]) = nun[diff[r]];
      }
      const std::vector<double> p_prune = context_.f->predict_proba(prune);
      score.resize(diff.size());
      heom_prune.clear();
      if (reward_ == "sparsity") {
        for (std::size_t r = 0; r < diff.size(); ++r) score[r] = p_target(p_prune[r], target) - p_target(p_c, target);
      } else if (reward_ == "proximity") {
        heom_prune.resize(diff.size());
        for (std::size_t r = 0; r < diff.size(); ++r) {
          heom_prune[r] = heom_(x.data(), prune.row(r));
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
  std::vector<std::size_t> mutable_;
  Heom heom_;
  NearestRow nun_[2];                     // candidate training rows by predicted class
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
