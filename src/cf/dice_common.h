// DiCE's shared machinery (dice-ml 0.12 `explainer_base.py` and the public data
// interface), for the four DiCE generators in cf/dice_*.cpp only.
//
// What it holds: the per-feature facts DiCE derives from the training data and
// the permitted ranges (decimal precision from the column modes, valid MADs,
// post-hoc quantiles, training min/max), the validity rule (stopping_threshold
// 0.5), the post-hoc sparsity enhancement (linear / binary search), the exact
// nearest-neighbour search used by the kd-tree method and the genetic
// initialisation, and the last step every method shares (constraints, validity
// filter). Space: rows of raw feature values as in Dataset::x, d = schema size.
//
// Deliberately not here: anything method-specific (sampling, GA, Adam), and no
// torch. Internal header: it stays in src/cf.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "sensecf/cf/generator.h"

namespace sensecf::cf::dice {

// DiCE's stopping_threshold (0.5) for a binary classifier: target 1 iff
// p1 >= 0.5, target 0 iff p1 <= 0.5 (so p1 == 0.5 is valid for both).
inline bool is_valid(double p1, int target) { return target == 1 ? p1 >= 0.5 : p1 <= 0.5; }

// Wall-clock budget of one query (CfOptions::time_limit).
class Deadline {
 public:
  explicit Deadline(double seconds)
      : end_(std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                 std::chrono::duration<double>(seconds))) {}
  bool passed() const { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

// numpy's round(v, decimals) (np.around, what pandas' Series.round and so
// dice-ml's round_to_precision call): rint(v * 10^decimals) / 10^decimals, ties to
// even on the scaled binary value: round_to(3.85, 1) == 3.8 (3.85 * 10 is 38.5
// in float64), round_to(4.25, 1) == 4.2. decimals >= 0.
double round_to(double v, int decimals);
// v as a float32 column holds it, back in double: dice-ml stores every float
// column as float32 (public_data_interface.py, _set_feature_dtypes).
inline double as_float32(double v) { return static_cast<double>(static_cast<float>(v)); }
// Number of decimals of Python's str() of a float32 (DiCE stores float columns
// as float32): 45.3 -> 1, 3.0 -> 1, 1e-05 -> 5.
int float32_decimals(double v);
// DiCE's precision of a continuous column: 0 if every value is integral (an int
// column in pandas), else the maximum float32_decimals over the column's modes
// (all values with the highest count).
int decimal_precision(const std::vector<double>& column);
double median(std::vector<double> v);
// numpy.quantile with the default linear interpolation; q in [0, 1].
double quantile(std::vector<double> v, double q);

// What every DiCE method learns once, in prepare(), from the schema and the
// training rows. Indexed by feature j in 0..d-1.
struct DiceData {
  std::size_t d = 0;
  std::vector<std::size_t> continuous;       // continuous feature indices (DiCE's continuous_feature_names)
  std::vector<std::size_t> varied;           // mutable features (DiCE's features_to_vary)
  std::vector<bool> is_categorical;          // [d]
  std::vector<bool> is_varied;               // [d]
  std::vector<double> lower, upper;          // [d] permitted range (continuous; schema bounds)
  std::vector<std::vector<int>> allowed;     // [d] permitted codes (categorical; schema `allowed`)
  std::vector<int> precision;                // [d] decimals (continuous), 0 for categorical
  // [d] dice-ml holds the column as float32: continuous with a non-integral value
  // (pandas reads it as float; an integral column is int32 and exact).
  std::vector<bool> is_float32;
  std::vector<double> train_min, train_max;  // [d] min / max over the training rows
  std::vector<double> mad;                   // [d] valid MAD of the raw column (<= 0 -> 1); 1 for categorical
  // Post-hoc sparsity: q_f = min(quantile_param(|U_f - median(U_f)|), mad_f),
  // U_f = unique training values; `posthoc_order` = continuous features by q desc.
  double posthoc_param = 0.0;                // 0: post-hoc sparsity off
  std::string posthoc_algorithm = "linear";  // linear | binary
  std::vector<double> posthoc_q;             // [d]
  std::vector<std::size_t> posthoc_order;

  bool in_range(std::size_t j, double v) const;  // permitted range / allowed codes of feature j
  // v as dice-ml's DataFrame holds feature j: as_float32(v) for a float32 column, else v.
  double stored(std::size_t j, double v) const { return is_float32[j] ? as_float32(v) : v; }
  // A data row (query or training row) as dice-ml holds it: `stored` per feature.
  std::vector<double> stored_row(const std::vector<double>& x) const;
};

// Builds DiceData; throws sensecf::Error naming `method` when the context lacks
// the schema, the training rows or the black box, or they disagree in size.
DiceData build_dice_data(const Context& context, const DiceOptions& options, const std::string& method);

// dice-ml's do_posthoc_sparsity_enhancement on `cfs` (each valid for `target`):
// for every CF and every continuous feature f in posthoc_order with
// |x_f - cf_f| <= q_f, move cf_f towards x_f (linear: steps of 10^-prec while
// valid and |x_f - cf_f| > 1e-3, at most limit_steps; binary: x_f if valid, else
// a binary search). x is taken as dice-ml holds the query (stored_row: float32
// columns, dice-ml's prepare_query_instance), so the linear search stops where
// dice-ml's does; the steps themselves add in float64, as in dice-ml (its first
// `+=` turns the column into float64). A CF moved all the way gets the stored
// query value (round_continuous turns it back into x_f). One black-box call per
// step, as in dice-ml. Stops early when `deadline` passes.
void posthoc_sparsity(const DiceData& data, const BlackBox& f, const std::vector<double>& x, int target,
                      std::vector<std::vector<double>>& cfs, const Deadline& deadline,
                      int limit_steps = 10000);

// Rounds the changed continuous features of `cf` to their precision with
// numpy's rounding (dice-ml's round_to_precision). A value equal to x_f or to
// its stored (float32) form is unchanged and set to x_f exactly: dice-ml also
// rounds untouched query values, which then count as changes; deliberately
// not done here.
void round_continuous(const DiceData& data, const std::vector<double>& x, std::vector<double>& cf);

// The last step of every DiCE method: projects each CF onto the constraints
// (enforce_constraints), predicts them in one batch and keeps, in order, those
// that are valid for `target` with no violations; the others are dropped, as
// dice-ml drops invalid CFs. `note` is kept; a reason is added when CFs were
// dropped or none is left.
QueryResult finish(const DiceData& data, const Context& context, const std::vector<double>& x, int target,
                   std::vector<std::vector<double>> cfs, std::string note);

// Training rows the model predicts as each class (p1 > 0.5 -> 1, dice-ml's
// argmax), predicted once in prepare().
struct TrainPredictions {
  std::vector<std::size_t> rows[2];
};
TrainPredictions predict_training_rows(const Context& context);

// Exact k nearest neighbours of x among `rows` of train_x, in DiCE's kd-tree
// space: raw continuous values plus one-hot categoricals (pd.get_dummies), so
// the squared Euclidean distance is sum_cont (a - b)^2 + 2 * #categorical
// differences. Brute force; ties broken by row order. Returns (distance, row)
// sorted by distance, k = min(k, rows.size()).
struct Neighbour {
  double distance = 0.0;
  std::size_t row = 0;
};
std::vector<Neighbour> nearest_rows(const DiceData& data, const data::Matrix& train_x,
                                    const std::vector<std::size_t>& rows, const std::vector<double>& x,
                                    std::size_t k);

}  // namespace sensecf::cf::dice
