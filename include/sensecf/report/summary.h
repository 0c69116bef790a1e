// Summaries over seeds for the report: mean ± sd, relative change, and the
// best / second-best marks of a table column.
//
// Conventions (docs/report.md): the sd uses n − 1; values that are not finite
// (a metric that was undefined, e.g. validity without any CF) are left out
// before summarising, so `n` counts the seeds that had a value. With n = 1 the
// sd is NaN (undefined) and tables show the mean alone.
//
// Not here: which rows go into a summary (tables.h, figures.h) or how a summary
// is printed (text_table.h).
#pragma once

#include <cstddef>
#include <limits>
#include <map>
#include <vector>

namespace sensecf::report {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct MeanSd {
  std::size_t n = 0;  // finite values summarised
  double mean = kNaN;
  double sd = kNaN;   // sample sd (n − 1); NaN when n < 2
};

// Mean and sample sd of the finite values.
MeanSd summarise(const std::vector<double>& values);

// Values keyed by seed -> their summary.
MeanSd summarise(const std::map<long long, double>& by_seed);

// 100 · (value − reference) / reference; NaN when either is not finite or the
// reference is 0.
double relative_change_pct(double value, double reference);

// Per-seed relative change of `value` against `reference`, over the seeds both
// have (seeds missing from either side are left out).
std::map<long long, double> relative_change_by_seed(const std::map<long long, double>& value,
                                                    const std::map<long long, double>& reference);

// Two row parameters (fractions, ratios) that name the same setting.
inline bool same_setting(double a, double b) { return a - b < 1e-9 && b - a < 1e-9; }

enum class Better { kHigher, kLower };

// Marks of one column: 1 = best, 2 = second best, 0 = neither. Values are
// compared after rounding to `decimals` (what the reader sees), so equal printed
// values share a mark; NaN values get no mark. "Second" is the next distinct
// printed value after the best.
std::vector<int> best_two(const std::vector<double>& values, Better better, int decimals);

}  // namespace sensecf::report
