// Cyclic Jacobi eigen-decomposition, z-scores and PCA (see pca.h).
#include "sensecf/report/pca.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace sensecf::report {

SymmetricEigen symmetric_eigen(std::vector<double> a, std::size_t d) {
  // a: [d, d], rotated in place towards diagonal form; v accumulates the rotations.
  std::vector<double> v(d * d, 0.0);
  for (std::size_t i = 0; i < d; ++i) v[i * d + i] = 1.0;
  auto at = [&](std::size_t r, std::size_t c) -> double& { return a[r * d + c]; };
  double total = 0;
  for (double x : a) total += x * x;
  constexpr int kMaxSweeps = 100;
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    double off = 0;
    for (std::size_t p = 0; p < d; ++p)
      for (std::size_t q = p + 1; q < d; ++q) off += at(p, q) * at(p, q);
    if (off <= 1e-30 * total || off == 0) break;
    for (std::size_t p = 0; p < d; ++p) {
      for (std::size_t q = p + 1; q < d; ++q) {
        const double apq = at(p, q);
        if (apq == 0) continue;
        // The rotation by phi in the (p, q) plane that zeroes a_pq:
        // cot(2 phi) = theta, t = tan(phi) the smaller root of t^2 + 2 theta t − 1 = 0.
        const double theta = (at(q, q) - at(p, p)) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (std::size_t k = 0; k < d; ++k) {  // a := a J
          const double akp = at(k, p), akq = at(k, q);
          at(k, p) = c * akp - s * akq;
          at(k, q) = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < d; ++k) {  // a := J^T a
          const double apk = at(p, k), aqk = at(q, k);
          at(p, k) = c * apk - s * aqk;
          at(q, k) = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < d; ++k) {  // v := v J
          const double vkp = v[k * d + p], vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<std::size_t> order(d);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return at(i, i) > at(j, j); });
  SymmetricEigen e;
  e.values.resize(d);
  e.vectors.assign(d * d, 0.0);
  for (std::size_t k = 0; k < d; ++k) {
    const std::size_t src = order[k];
    e.values[k] = at(src, src);
    std::size_t largest = 0;
    for (std::size_t r = 0; r < d; ++r) {
      if (std::fabs(v[r * d + src]) > std::fabs(v[largest * d + src])) largest = r;
    }
    const double sign = v[largest * d + src] < 0 ? -1.0 : 1.0;
    for (std::size_t r = 0; r < d; ++r) e.vectors[r * d + k] = sign * v[r * d + src];
  }
  return e;
}

std::vector<double> standardise(const std::vector<double>& x, std::size_t n, std::size_t d) {
  std::vector<double> z(x.size(), 0.0);
  for (std::size_t j = 0; j < d; ++j) {
    double mean = 0;
    for (std::size_t i = 0; i < n; ++i) mean += x[i * d + j];
    mean /= static_cast<double>(std::max<std::size_t>(n, 1));
    double var = 0;
    for (std::size_t i = 0; i < n; ++i) var += (x[i * d + j] - mean) * (x[i * d + j] - mean);
    const double sd = std::sqrt(var / static_cast<double>(std::max<std::size_t>(n, 1)));
    for (std::size_t i = 0; i < n; ++i) z[i * d + j] = sd > 0 ? (x[i * d + j] - mean) / sd : 0.0;
  }
  return z;
}

Pca pca(const std::vector<double>& x, std::size_t n, std::size_t d, std::size_t k) {
  std::vector<double> centred = x;
  for (std::size_t j = 0; j < d; ++j) {
    double mean = 0;
    for (std::size_t i = 0; i < n; ++i) mean += x[i * d + j];
    mean /= static_cast<double>(std::max<std::size_t>(n, 1));
    for (std::size_t i = 0; i < n; ++i) centred[i * d + j] -= mean;
  }
  std::vector<double> cov(d * d, 0.0);  // [d, d]
  const double denom = static_cast<double>(n > 1 ? n - 1 : 1);
  for (std::size_t a = 0; a < d; ++a) {
    for (std::size_t b = a; b < d; ++b) {
      double sum = 0;
      for (std::size_t i = 0; i < n; ++i) sum += centred[i * d + a] * centred[i * d + b];
      cov[a * d + b] = cov[b * d + a] = sum / denom;
    }
  }
  const SymmetricEigen e = symmetric_eigen(cov, d);
  double trace = 0;
  for (double l : e.values) trace += std::max(l, 0.0);
  Pca p;
  p.k = k;
  p.coords.assign(n * k, 0.0);
  p.components.assign(k * d, 0.0);
  p.explained_variance_ratio.assign(k, 0.0);
  for (std::size_t c = 0; c < std::min(k, d); ++c) {
    for (std::size_t j = 0; j < d; ++j) p.components[c * d + j] = e.vectors[j * d + c];
    p.explained_variance_ratio[c] = trace > 0 ? std::max(e.values[c], 0.0) / trace : 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < d; ++j) s += centred[i * d + j] * e.vectors[j * d + c];
      p.coords[i * k + c] = s;
    }
  }
  return p;
}

}  // namespace sensecf::report
