// InputEncoder: raw feature rows -> the numeric inputs of the NN and the SVM.
//
// Continuous features are standardised with the training mean and population
// standard deviation (a constant feature, std < 1e-12, keeps std = 1 so it maps
// to 0). A categorical feature with k = Feature::categories.size() categories
// becomes a one-hot block of k columns; code c in 0..k-1 sets column c of the
// block, and any other value (out of range, non-integer, NaN) leaves the whole
// block at zero. Columns keep the schema's feature order:
//
//   x: [n, d]  ->  transform(x): [n, n_inputs],  n_inputs = n_continuous + sum of k
//
// The encoder is plain C++ (no torch): the NN copies transform()'s output into a
// tensor, or rebuilds the same affine map from features() when it needs gradients
// through the encoding. It deliberately does not impute missing values, clip
// outliers or learn categories from data: the schema is the source of truth.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf::clf {

class InputEncoder {
 public:
  // How one raw feature maps onto the encoded columns [offset, offset + width).
  struct EncodedFeature {
    std::string name;
    bool categorical = false;
    double mean = 0.0;          // continuous: (x - mean) / std
    double std = 1.0;
    std::size_t n_categories = 0;  // categorical: width of the one-hot block
    std::size_t offset = 0;        // first encoded column
    std::size_t width() const { return categorical ? n_categories : 1; }
  };

  // Learns the means/stds of the continuous columns of x: [n, d], d = schema.size().
  // Throws sensecf::Error when x does not match the schema, x has no rows, or a
  // categorical feature lists no categories.
  void fit(const data::Schema& schema, const data::Matrix& x);

  // x: [n, d] -> [n, n_inputs]. Throws sensecf::Error if not fitted or d differs.
  data::Matrix transform(const data::Matrix& x) const;
  // One row: in [d] -> out [n_inputs] (every entry written). The caller checks
  // fitted() and d; this is transform()'s inner loop, for callers that keep
  // their own buffers.
  void transform_row(const double* in, double* out) const;

  bool fitted() const { return fitted_; }
  std::size_t n_features() const { return features_.size(); }  // d
  std::size_t n_inputs() const { return n_inputs_; }
  const std::vector<EncodedFeature>& features() const { return features_; }
  // A readable name per encoded column: "age", "gender=female", ...
  std::vector<std::string> input_names() const;

  // {"format": "sensecf.input_encoder", "version": 1, "features": [...]}.
  nlohmann::json to_json() const;
  // Throws sensecf::Error naming the missing or malformed field.
  static InputEncoder from_json(const nlohmann::json& j);

 private:
  std::vector<EncodedFeature> features_;
  std::vector<std::vector<std::string>> category_names_;  // per feature; empty if continuous
  std::size_t n_inputs_ = 0;
  bool fitted_ = false;
};

}  // namespace sensecf::clf
