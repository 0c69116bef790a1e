// The tabular data model: Matrix, Feature, Schema, Dataset.
//
// A Dataset is a dense row-major matrix of features plus a binary label and a
// group (patient / participant id) per row. Categorical features are stored as
// integer codes 0..k-1 into Feature::categories, so every classifier and CF
// method sees plain numbers. No file I/O here (see csv.h) and no torch.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sensecf::data {

// Row-major dense matrix of doubles: x: [n_rows, n_cols].
struct Matrix {
  std::size_t n_rows = 0;
  std::size_t n_cols = 0;
  std::vector<double> values;

  Matrix() = default;
  Matrix(std::size_t rows, std::size_t cols, double fill = 0.0)
      : n_rows(rows), n_cols(cols), values(rows * cols, fill) {}
  double& at(std::size_t r, std::size_t c) { return values[r * n_cols + c]; }
  double at(std::size_t r, std::size_t c) const { return values[r * n_cols + c]; }
  const double* row(std::size_t r) const { return values.data() + r * n_cols; }
  double* row(std::size_t r) { return values.data() + r * n_cols; }
  Matrix rows(const std::vector<std::size_t>& index) const;
};

enum class FeatureKind { kContinuous, kCategorical };

struct Feature {
  std::string name;
  FeatureKind kind = FeatureKind::kContinuous;
  bool immutable = false;
  std::string unit;  // for prompts and reports, e.g. "mg/dL"
  // Continuous: permitted range, learned from training data by Schema::learn_bounds.
  double lower = 0.0;
  double upper = 0.0;
  // Categorical: code i stands for categories[i] (sorted); `allowed` holds the
  // codes seen in training data (the permitted set for counterfactuals).
  std::vector<std::string> categories;
  std::vector<int> allowed;

  bool is_categorical() const { return kind == FeatureKind::kCategorical; }
};

struct Schema {
  std::vector<Feature> features;
  std::string label;  // label column name in the source file
  std::string group;  // group (patient id) column name, empty if none

  std::size_t size() const { return features.size(); }
  // Index of a feature by name; throws sensecf::Error naming the known features.
  std::size_t index_of(const std::string& name) const;
  std::vector<std::string> names() const;
  // Sets continuous bounds to the min/max over `rows` of x and categorical
  // `allowed` to the codes present there.
  void learn_bounds(const Matrix& x, const std::vector<std::size_t>& rows);

  nlohmann::json to_json() const;
  static Schema from_json(const nlohmann::json& j);  // throws sensecf::Error
};

struct Dataset {
  Schema schema;
  Matrix x;                        // [n, d], d = schema.size()
  std::vector<int> y;              // [n], 0 or 1
  std::vector<std::string> group;  // [n], patient id ("row<i>" when no group column)
  std::string source;              // file the data came from (for messages)

  std::size_t size() const { return y.size(); }
  Dataset subset(const std::vector<std::size_t>& rows) const;
  // Counts of label 0 and 1.
  std::size_t count_label(int label) const;
  // Of the given rows only.
  std::size_t count_label(int label, const std::vector<std::size_t>& rows) const;
};

}  // namespace sensecf::data
