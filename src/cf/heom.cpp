// Heom and NearestRow (cf/heom.h).
//
// Why the float pass can be trusted. For a row b and a query x, the exact
// distance E (float64, the sum NICEx computes) and the float32 estimate A both
// approximate the real number D = sum_k |b_k - x_k| / s_k + (differing codes).
// With U = 2^-24 (float32 rounding), K numeric and C categorical features, and
// S = sum_k |b_k / s_k| + sum_k |x_k / s_k|:
//   * each stored b_k / s_k and x_k / s_k is off by at most U of itself, the
//     subtraction by U of its result: per term, U * (2 |b_k / s_k| + 2 |x_k / s_k|)
//     at most, so 2 U S over all terms;
//   * the float sum of K + C terms adds at most (K + C) U (S + C) (the codes are
//     small integers, exact in float32 and counted exactly);
//   * E itself is off from D by at most (K + 2) 2^-53 (S + C).
// So |A - E| <= (K + C + 4) U (S + C) = M / 2 with the margin M used below (a
// factor 2 to spare). A row can be the exact minimum, or tie with it, only if
//   A <= (best exact distance so far) + M   and   A <= (least A of its block) + 2M,
// and only rows passing both get E; the scan order and the strict "<" keep the
// first of equal minima, as the exact scan does. S is bounded (1e30) so that no
// float32 value overflows; rows or queries outside that, or non-integer codes in
// the rows, use the exact scan.
#include "sensecf/cf/heom.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sensecf/core/error.h"
#include "sensecf/core/simd.h"

namespace sensecf::cf {
namespace {

constexpr double kEps = 1e-11;       // NICEx's scale floor
constexpr std::size_t kBlock = 256;  // rows per float pass
constexpr double kMaxNorm = 1e30;    // beyond this the float pass is not used
constexpr double kFloatUnit = 0x1.0p-24;
constexpr float kNoCode = -0.5f;  // a query code no row can have (rows hold integers)

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

// A float32 code for a double value: itself when it is an integer that float32
// holds exactly, else kNoCode (different from every integer).
float code_of(double v) {
  return v == std::floor(v) && std::abs(v) < 16777216.0 ? static_cast<float>(v) : kNoCode;
}

// dist[i] = sum_k |numeric[k][i] - xn[k]| + sum_j (codes[j][i] != xc[j]) for the
// kBlock rows starting at the given column pointers (stride: floats per feature);
// returns the least dist[i]. Padding rows hold +inf (or no code), so they are
// never the least.
__attribute__((always_inline)) inline float approximate_block_impl(const float* numeric, const float* codes,
                                                                   std::size_t stride, std::size_t n_numeric,
                                                                   std::size_t n_codes, const float* xn,
                                                                   const float* xc, float* dist) {
  // 64 rows at a time, their sums kept in registers across the features (8
  // independent AVX2 sums, enough to hide the latency of each addition).
  constexpr std::size_t kRows = 64;
  for (std::size_t c = 0; c < kBlock; c += kRows) {
    float acc[kRows] = {};
    for (std::size_t k = 0; k < n_numeric; ++k) {
      const float* col = numeric + k * stride + c;
      const float v = xn[k];
      for (std::size_t u = 0; u < kRows; ++u) acc[u] += std::fabs(col[u] - v);
    }
    for (std::size_t j = 0; j < n_codes; ++j) {
      const float* col = codes + j * stride + c;
      const float v = xc[j];
      for (std::size_t u = 0; u < kRows; ++u) acc[u] += col[u] != v ? 1.0f : 0.0f;
    }
    for (std::size_t u = 0; u < kRows; ++u) dist[c + u] = acc[u];
  }
  // The distances are >= 0 and not NaN: their bit patterns order as they do.
  std::uint32_t least = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < kBlock; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &dist[i], sizeof bits);
    least = std::min(least, bits);
  }
  float out;
  std::memcpy(&out, &least, sizeof out);
  return out;
}

float approximate_block_baseline(const float* numeric, const float* codes, std::size_t stride,
                                 std::size_t n_numeric, std::size_t n_codes, const float* xn, const float* xc,
                                 float* dist) {
  return approximate_block_impl(numeric, codes, stride, n_numeric, n_codes, xn, xc, dist);
}

#if SENSECF_HAVE_SIMD_VARIANTS
SENSECF_TARGET_AVX2 float approximate_block_avx2(const float* numeric, const float* codes, std::size_t stride,
                                                 std::size_t n_numeric, std::size_t n_codes, const float* xn,
                                                 const float* xc, float* dist) {
  return approximate_block_impl(numeric, codes, stride, n_numeric, n_codes, xn, xc, dist);
}

SENSECF_TARGET_AVX512 float approximate_block_avx512(const float* numeric, const float* codes,
                                                     std::size_t stride, std::size_t n_numeric,
                                                     std::size_t n_codes, const float* xn, const float* xc,
                                                     float* dist) {
  return approximate_block_impl(numeric, codes, stride, n_numeric, n_codes, xn, xc, dist);
}
#endif

// The float pass at the SIMD level in force (core/simd.h).
float approximate_block(const float* numeric, const float* codes, std::size_t stride, std::size_t n_numeric,
                        std::size_t n_codes, const float* xn, const float* xc, float* dist) {
#if SENSECF_HAVE_SIMD_VARIANTS
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      return approximate_block_avx512(numeric, codes, stride, n_numeric, n_codes, xn, xc, dist);
    case SimdLevel::kAvx2:
      return approximate_block_avx2(numeric, codes, stride, n_numeric, n_codes, xn, xc, dist);
    case SimdLevel::kBaseline:
      break;
  }
#endif
  return approximate_block_baseline(numeric, codes, stride, n_numeric, n_codes, xn, xc, dist);
}

}  // namespace

Heom::Heom(const data::Schema& schema, const data::Matrix& train, const std::string& normalization) {
  if (train.n_cols != schema.size()) {
    throw Error(
        fmt::format("heom: the rows have {} features, the schema has {}", train.n_cols, schema.size()));
  }
  if (train.n_rows == 0) throw Error("heom: no rows to take the scales from");
  for (std::size_t j = 0; j < schema.size(); ++j) {
    (schema.features[j].is_categorical() ? categorical_ : numeric_).push_back(j);
  }
  scale_.assign(numeric_.size(), 1.0);
  for (std::size_t k = 0; k < numeric_.size(); ++k) {
    const std::size_t j = numeric_[k];
    double s = 0.0;
    if (normalization == "minmax") {
      double lo = train.at(0, j), hi = train.at(0, j);
      for (std::size_t r = 1; r < train.n_rows; ++r) {
        lo = std::min(lo, train.at(r, j));
        hi = std::max(hi, train.at(r, j));
      }
      s = hi - lo;
    } else if (normalization == "std") {
      double mean = 0.0;
      for (std::size_t r = 0; r < train.n_rows; ++r) mean += train.at(r, j);
      mean /= static_cast<double>(train.n_rows);
      double ss = 0.0;
      for (std::size_t r = 0; r < train.n_rows; ++r) ss += (train.at(r, j) - mean) * (train.at(r, j) - mean);
      s = std::sqrt(ss / static_cast<double>(train.n_rows));
    } else {
      throw UsageError("nice: unknown cf.nice_normalization '" + normalization + "'", "use minmax or std");
    }
    scale_[k] = s < kEps ? kEps : s;
  }
}

double Heom::operator()(const double* a, const double* b) const {
  double terms[128];
  std::vector<double> many;
  double* t = terms;
  if (numeric_.size() > 128) {
    many.resize(numeric_.size());
    t = many.data();
  }
  for (std::size_t k = 0; k < numeric_.size(); ++k)
    t[k] = std::abs(b[numeric_[k]] - a[numeric_[k]]) / scale_[k];
  double n_diff = 0.0;
  for (std::size_t j : categorical_) n_diff += b[j] != a[j] ? 1.0 : 0.0;
  return numpy_sum(t, numeric_.size()) + n_diff;
}

NearestRow::NearestRow(const Heom& heom, const data::Matrix& train, std::vector<std::size_t> rows)
    : heom_(&heom), train_(&train), rows_(std::move(rows)) {
  for (std::size_t r : rows_) {
    if (r >= train.n_rows) {
      throw Error(fmt::format("NearestRow: row {} is past the {} rows given", r, train.n_rows));
    }
  }
  const std::vector<std::size_t>& numeric = heom.numeric();
  const std::vector<std::size_t>& categorical = heom.categorical();
  n_padded_ = (rows_.size() + kBlock - 1) / kBlock * kBlock;
  numeric_.assign(numeric.size() * n_padded_, std::numeric_limits<float>::infinity());
  codes_.assign(categorical.size() * n_padded_, kNoCode);
  bounded_ = true;
  max_row_norm_ = 0.0;
  for (std::size_t i = 0; i < rows_.size() && bounded_; ++i) {
    const double* row = train.row(rows_[i]);
    double norm = 0.0;
    for (std::size_t k = 0; k < numeric.size(); ++k) {
      const double v = row[numeric[k]] / heom.scale()[k];
      norm += std::abs(v);
      numeric_[k * n_padded_ + i] = static_cast<float>(v);
    }
    for (std::size_t c = 0; c < categorical.size(); ++c) {
      const float code = code_of(row[categorical[c]]);
      if (code == kNoCode) bounded_ = false;
      codes_[c * n_padded_ + i] = code;
    }
    if (!(norm < kMaxNorm)) bounded_ = false;  // also NaN and inf
    max_row_norm_ = std::max(max_row_norm_, norm);
  }
  if (!bounded_) {
    numeric_.clear();
    codes_.clear();
  }
}

std::size_t NearestRow::scan(const double* x) const {
  if (rows_.empty()) throw Error("NearestRow: no rows to search");
  const Heom& heom = *heom_;
  std::size_t nearest = rows_[0];
  double best = heom(x, train_->row(rows_[0]));
  for (std::size_t i = 1; i < rows_.size(); ++i) {
    const double dist = heom(x, train_->row(rows_[i]));
    if (dist < best) {
      best = dist;
      nearest = rows_[i];
    }
  }
  return nearest;
}

std::size_t NearestRow::nearest(const double* x, Stats* stats) const {
  if (rows_.empty()) throw Error("NearestRow: no rows to search");
  const Heom& heom = *heom_;
  const std::vector<std::size_t>& numeric = heom.numeric();
  const std::vector<std::size_t>& categorical = heom.categorical();

  // The query, scaled as the rows are.
  constexpr std::size_t kInline = 64;
  float xn_inline[kInline], xc_inline[kInline];
  std::vector<float> xn_many, xc_many;
  float* xn = xn_inline;
  float* xc = xc_inline;
  if (numeric.size() > kInline || categorical.size() > kInline) {
    xn_many.resize(numeric.size());
    xc_many.resize(categorical.size());
    xn = xn_many.data();
    xc = xc_many.data();
  }
  double x_norm = 0.0;
  for (std::size_t k = 0; k < numeric.size(); ++k) {
    const double v = x[numeric[k]] / heom.scale()[k];
    x_norm += std::abs(v);
    xn[k] = static_cast<float>(v);
  }
  for (std::size_t c = 0; c < categorical.size(); ++c) xc[c] = code_of(x[categorical[c]]);

  if (!bounded_ || !(x_norm < kMaxNorm)) {
    if (stats) *stats = Stats{rows_.size(), true};
    return scan(x);
  }
  const double n_codes = static_cast<double>(categorical.size());
  const double margin = 2.0 * (static_cast<double>(numeric.size()) + n_codes + 4.0) * kFloatUnit *
                        (max_row_norm_ + x_norm + n_codes);

  std::size_t exact = 0;
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = 0;
  alignas(64) float dist[kBlock];
  constexpr std::size_t kGroup = 16;  // rows tested together before any is looked at alone
  for (std::size_t start = 0; start < rows_.size(); start += kBlock) {
    const float block_min = approximate_block(numeric_.data() + start, codes_.data() + start, n_padded_,
                                              numeric.size(), categorical.size(), xn, xc, dist);
    const std::size_t n = std::min(kBlock, rows_.size() - start);
    const double block_limit = static_cast<double>(block_min) + 2.0 * margin;
    for (std::size_t g = 0; g < n; g += kGroup) {
      // A float limit rounded up, so that the group test never drops a candidate.
      const double limit = std::min(best + margin, block_limit);
      const float group_limit =
          std::nextafter(static_cast<float>(limit), std::numeric_limits<float>::infinity());
      bool any = false;
      for (std::size_t u = 0; u < kGroup; ++u) any |= dist[g + u] <= group_limit;
      if (!any) continue;
      for (std::size_t i = g; i < std::min(g + kGroup, n); ++i) {
        if (static_cast<double>(dist[i]) > std::min(best + margin, block_limit)) continue;
        const double d = heom(x, train_->row(rows_[start + i]));
        ++exact;
        if (d < best) {
          best = d;
          best_i = start + i;
        }
      }
    }
  }
  if (stats) *stats = Stats{exact, false};
  return rows_[best_i];
}

}  // namespace sensecf::cf
