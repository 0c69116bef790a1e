// Principal component analysis for Fig. 8: z-scores, the eigen-decomposition of
// a small symmetric matrix (cyclic Jacobi), and the projection onto the leading
// components.
//
// Shapes: x is [n, d] row-major (n points, d features); a symmetric matrix is
// [d, d]. d is a dozen or so features, so plain O(d^3) Jacobi sweeps are fast
// and accurate; this is not a general linear-algebra library.
// Conventions match scikit-learn's StandardScaler + PCA (the golden reference,
// tests/python/test_report_pca.py): population sd (ddof 0) with constant
// columns left at 0, covariance with n − 1; each component's sign is chosen so
// that its entry of largest magnitude is positive (scikit-learn's sign may
// differ; coordinates agree up to the sign of each component).
#pragma once

#include <cstddef>
#include <vector>

namespace sensecf::report {

struct SymmetricEigen {
  std::vector<double> values;   // [d], descending
  std::vector<double> vectors;  // [d, d]; column k is the unit eigenvector of values[k]
};

// Eigen-decomposition of the symmetric matrix a ([d, d], row-major; only
// symmetric input is meaningful).
SymmetricEigen symmetric_eigen(std::vector<double> a, std::size_t d);

// Column-wise z-scores of x [n, d]: (x − mean) / sd with the population sd; a
// column with sd 0 becomes 0.
std::vector<double> standardise(const std::vector<double>& x, std::size_t n, std::size_t d);

struct Pca {
  std::size_t k = 0;
  std::vector<double> coords;                    // [n, k]
  std::vector<double> components;                // [k, d], unit rows
  std::vector<double> explained_variance_ratio;  // [k]
};

// PCA of x [n, d] (centred here, not scaled) onto its k leading components;
// components beyond d give zero coordinates.
Pca pca(const std::vector<double>& x, std::size_t n, std::size_t d, std::size_t k);

}  // namespace sensecf::report
