// NICE's distance and its nearest-unlike-neighbour search.
//
// Heom is the heterogeneous Euclidean-overlap metric as NICEx 0.2.3 computes
// it: the sum over numeric features of |a - b| / scale (numpy's pairwise
// summation order), plus the number of categorical features whose codes
// differ; no square root. NearestRow finds, among a fixed set of rows, the
// one nearest to a query under Heom: bit for bit the row that scanning every
// row in order and keeping the first strict minimum gives (ties go to the
// earlier row), without the exact distance to most rows.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf::cf {

class Heom {
 public:
  Heom() = default;
  // Scales from the training rows: "minmax" (max - min) or "std" (population
  // standard deviation), floored at 1e-11 as NICEx does.
  Heom(const data::Schema& schema, const data::Matrix& train, const std::string& normalization);

  // Distance between rows a and b, both [schema size].
  double operator()(const double* a, const double* b) const;

  const std::vector<std::size_t>& numeric() const { return numeric_; }  // feature indices, schema order
  const std::vector<std::size_t>& categorical() const { return categorical_; }
  const std::vector<double>& scale() const { return scale_; }  // [numeric().size()]

 private:
  std::vector<std::size_t> numeric_;
  std::vector<std::size_t> categorical_;
  std::vector<double> scale_;
};

// The Heom-nearest of a fixed list of rows of `train`. A pass over the rows in
// float32, laid out feature by feature so that it vectorises, gives each row an
// approximate distance with a proven error bound; only the rows whose bound
// does not rule them out get the exact distance. A query or a row that the
// bound cannot cover (non-finite or huge values, non-integer codes in the
// rows) falls back to the exact scan.
class NearestRow {
 public:
  NearestRow() = default;
  // `heom` and `train` must outlive this object; rows index into train.
  NearestRow(const Heom& heom, const data::Matrix& train, std::vector<std::size_t> rows);

  bool empty() const { return rows_.empty(); }
  std::size_t size() const { return rows_.size(); }
  const std::vector<std::size_t>& rows() const { return rows_; }

  // Counters of one query, for tests and benchmarks.
  struct Stats {
    std::size_t exact = 0;  // exact distances computed
    bool scanned = false;   // the exact scan answered (the bound could not be used)
  };
  // The train row index nearest to x ([schema size]); the list must not be empty.
  std::size_t nearest(const double* x, Stats* stats = nullptr) const;
  // The reference: exact distance to every row in order, first strict minimum.
  std::size_t scan(const double* x) const;

 private:
  const Heom* heom_ = nullptr;
  const data::Matrix* train_ = nullptr;
  std::vector<std::size_t> rows_;
  bool bounded_ = false;        // the float pass may be used for these rows
  std::size_t n_padded_ = 0;    // rows_.size() rounded up to the block size
  std::vector<float> numeric_;  // [numeric feature][n_padded_]: value / scale
  std::vector<float> codes_;    // [categorical feature][n_padded_]: integer codes
  double max_row_norm_ = 0.0;   // max over rows of sum |value / scale|
};

}  // namespace sensecf::cf
