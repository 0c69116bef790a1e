// Unit tests of NICE's distance and its nearest-unlike-neighbour search
// (cf/heom.h).
//
// Heom is checked against a hand-computed case and against a plain long-double
// sum. NearestRow::nearest must name exactly the row that the exact scan names
// (first strict minimum in row order) on random data: continuous values,
// values on a coarse grid (many exact ties, duplicate rows, queries equal to
// rows), 0-20 numeric and 0-3 categorical features, lists of 1 to 1,000 rows
// (block edges at 256), near-ties far below float32 resolution, queries out
// of the rows' range, non-integer and NaN codes, NaN values and values too
// large for the float pass (which must fall back to the scan); at every SIMD
// level the CPU has.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "sensecf/cf/heom.h"
#include "sensecf/core/error.h"
#include "sensecf/core/simd.h"
#include "test_util.h"

namespace sensecf::cf {
namespace {

data::Schema make_schema(std::size_t n_numeric, std::size_t n_categorical) {
  data::Schema s;
  // Interleaved, so that the feature order is not "numeric first".
  std::size_t numeric = 0, categorical = 0;
  while (numeric + categorical < n_numeric + n_categorical) {
    data::Feature f;
    f.name = "f" + std::to_string(s.features.size());
    const bool odd = s.features.size() % 2 == 1;
    if (categorical < n_categorical && (odd || numeric == n_numeric)) {
      f.kind = data::FeatureKind::kCategorical;
      f.categories = {"a", "b", "c", "d"};
      f.allowed = {0, 1, 2, 3};
      ++categorical;
    } else {
      ++numeric;
    }
    s.features.push_back(f);
  }
  return s;
}

// Random rows for `schema`: grid values (0, 0.5, ..., 2) when `grid`, else continuous.
data::Matrix random_rows(const data::Schema& schema, std::size_t n, bool grid, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-3.0, 7.0);
  std::uniform_int_distribution<int> g(0, 4), code(0, 3);
  data::Matrix m(n, schema.size());
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < schema.size(); ++j)
      m.at(r, j) = schema.features[j].is_categorical() ? code(rng) : grid ? 0.5 * g(rng) : u(rng);
  return m;
}

std::vector<std::size_t> every_other_row(std::size_t n) {
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < n; r += 2) rows.push_back(r);
  return rows;
}

TEST(Heom, HandComputedAndNumpyOrder) {
  data::Schema s = make_schema(2, 1);  // f0 numeric, f1 categorical, f2 numeric
  data::Matrix train(3, 3);
  train.values = {0, 0, 10, 4, 1, 20, 2, 2, 30};  // scales (minmax): 4 and 20
  const Heom heom(s, train, "minmax");
  ASSERT_EQ(heom.numeric(), (std::vector<std::size_t>{0, 2}));
  ASSERT_EQ(heom.categorical(), (std::vector<std::size_t>{1}));
  const double a[] = {1, 0, 15}, b[] = {3, 1, 10};
  EXPECT_DOUBLE_EQ(heom(a, b), 2.0 / 4 + 5.0 / 20 + 1);
  EXPECT_EQ(heom(a, a), 0.0);

  // 20 numeric features: numpy's pairwise order, within a few ulps of the long-double sum.
  std::mt19937_64 rng(5);
  const data::Schema wide = make_schema(20, 0);
  const data::Matrix rows = random_rows(wide, 50, false, rng);
  const Heom h(wide, rows, "std");
  for (std::size_t r = 1; r < rows.n_rows; ++r) {
    long double sum = 0;
    for (std::size_t k = 0; k < 20; ++k)
      sum += std::abs(static_cast<long double>(rows.at(r, k)) - rows.at(0, k)) / h.scale()[k];
    EXPECT_NEAR(h(rows.row(0), rows.row(r)), static_cast<double>(sum), 1e-13 * static_cast<double>(sum));
  }
  EXPECT_THROW_WITH(Heom(wide, rows, "zscore"), UsageError, "unknown cf.nice_normalization 'zscore'");
}

TEST(NearestRow, SameRowAsTheExactScanOnRandomDataIncludingTies) {
  // Each SIMD level this CPU has (core/simd.h) in turn, on its own random data.
  for (const SimdLevel cap : {SimdLevel::kBaseline, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    const SimdLevel level = set_simd_level(cap);
    SCOPED_TRACE(simd_level_name(level));
    std::mt19937_64 rng(11 + static_cast<int>(cap));
    std::size_t cases = 0, bounded = 0, exact_total = 0, scanned_total = 0;
    for (std::size_t n_numeric : {0, 1, 3, 9, 20}) {
      for (std::size_t n_categorical : {0, 1, 3}) {
        if (n_numeric + n_categorical == 0) continue;
        const data::Schema schema = make_schema(n_numeric, n_categorical);
        for (std::size_t n : {1, 2, 255, 256, 257, 1000}) {
          for (bool grid : {false, true}) {
            const data::Matrix train = random_rows(schema, 2 * n, grid, rng);
            const Heom heom(schema, train, grid ? "minmax" : "std");
            const NearestRow index(heom, train, every_other_row(2 * n));
            ASSERT_EQ(index.size(), n);
            // Queries: fresh rows, the listed rows themselves, and rows out of range.
            data::Matrix queries = random_rows(schema, 40, grid, rng);
            for (std::size_t q = 0; q < 10; ++q) {
              std::copy(train.row(2 * (q % n)), train.row(2 * (q % n)) + schema.size(), queries.row(q));
            }
            for (std::size_t q = 10; q < 15; ++q)
              for (std::size_t j = 0; j < schema.size(); ++j)
                if (!schema.features[j].is_categorical()) queries.at(q, j) *= 100.0;
            for (std::size_t q = 0; q < queries.n_rows; ++q) {
              NearestRow::Stats stats;
              const std::size_t got = index.nearest(queries.row(q), &stats);
              ASSERT_EQ(got, index.scan(queries.row(q)))
                  << n_numeric << " numeric, " << n_categorical << " categorical, " << n << " rows, grid "
                  << grid << ", query " << q;
              ++cases;
              if (!stats.scanned) ++bounded;
              exact_total += stats.exact;
              scanned_total += n;
            }
          }
        }
      }
    }
    EXPECT_EQ(bounded, cases);  // every case here took the float pass
    // The float pass rules out most rows (grid ties keep many in).
    EXPECT_LT(exact_total, scanned_total / 2);
  }
  set_simd_level(SimdLevel::kAvx512);
}

TEST(NearestRow, TiesAreTheFirstRowAndNearTiesBelowFloatResolutionAreExact) {
  // Rows that float32 cannot tell apart: 1 + k * 2^-40. The query is nearest to
  // row 7; rows 7 and 9 are equally near in float64 (|offset| the same).
  const data::Schema schema = make_schema(1, 0);
  data::Matrix train(16, 1);
  for (std::size_t r = 0; r < 16; ++r) train.at(r, 0) = 1.0 + static_cast<double>(r) * 0x1.0p-40;
  train.at(15, 0) = 2.0;  // scale 1
  const Heom heom(schema, train, "minmax");
  std::vector<std::size_t> rows(16);
  for (std::size_t r = 0; r < 16; ++r) rows[r] = r;
  const NearestRow index(heom, train, rows);
  const double x = 1.0 + 8.0 * 0x1.0p-40;
  const double x_between[] = {x};
  NearestRow::Stats stats;
  EXPECT_EQ(index.nearest(x_between, &stats), 8u);
  EXPECT_FALSE(stats.scanned);
  const double x_tie[] = {1.0 + 7.5 * 0x1.0p-40};  // equally near rows 7 and 8: the first wins
  EXPECT_EQ(index.nearest(x_tie), 7u);
  EXPECT_EQ(index.scan(x_tie), 7u);

  // Duplicate rows: the earliest duplicate.
  data::Matrix dup(5, 1);
  dup.values = {3, 1, 1, 5, 1};
  const Heom h2(schema, dup, "minmax");
  const NearestRow index2(h2, dup, {0, 1, 2, 3, 4});
  const double one[] = {1.2};
  EXPECT_EQ(index2.nearest(one), 1u);
}

TEST(NearestRow, QueriesAndRowsTheFloatPassCannotCoverUseTheScan) {
  std::mt19937_64 rng(3);
  const data::Schema schema = make_schema(3, 2);
  data::Matrix train = random_rows(schema, 300, false, rng);
  const Heom heom(schema, train, "minmax");
  const NearestRow index(heom, train, every_other_row(300));
  const std::size_t numeric = heom.numeric()[0], categorical = heom.categorical()[0];

  std::vector<double> q(train.row(3), train.row(3) + schema.size());
  NearestRow::Stats stats;
  q[categorical] = 1.5;  // a code no row has: counts as different from all, still the float pass
  EXPECT_EQ(index.nearest(q.data(), &stats), index.scan(q.data()));
  EXPECT_FALSE(stats.scanned);
  q[categorical] = std::nan("");
  EXPECT_EQ(index.nearest(q.data(), &stats), index.scan(q.data()));
  EXPECT_FALSE(stats.scanned);
  q[numeric] = std::nan("");
  EXPECT_EQ(index.nearest(q.data(), &stats), index.scan(q.data()));
  EXPECT_TRUE(stats.scanned);
  q[numeric] = 1e35;  // too large for float32 sums
  EXPECT_EQ(index.nearest(q.data(), &stats), index.scan(q.data()));
  EXPECT_TRUE(stats.scanned);

  // A row with a non-integer code or a huge value (scales from the other rows): every query scans.
  for (const double bad : {0.25, 1e35}) {
    data::Matrix odd = train;
    odd.at(10, bad == 0.25 ? categorical : numeric) = bad;
    const NearestRow idx(heom, odd, every_other_row(300));
    EXPECT_EQ(idx.nearest(odd.row(11), &stats), idx.scan(odd.row(11)));
    EXPECT_TRUE(stats.scanned);
  }
  EXPECT_THROW_WITH(NearestRow(heom, train, {300}), Error, "past the 300 rows");
  EXPECT_THROW_WITH(NearestRow(heom, train, {}).nearest(q.data()), Error, "no rows");
}

}  // namespace
}  // namespace sensecf::cf
