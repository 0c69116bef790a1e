// InputEncoder: standardisation of continuous features and one-hot blocks for
// categorical ones (see preprocess.h for the layout). No torch, no file I/O: the
// classifiers that use it (NN, SVM) store its JSON next to their model files.
#include "sensecf/clf/preprocess.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>

#include "sensecf/core/error.h"

namespace sensecf::clf {

namespace {

constexpr const char* kFormat = "sensecf.input_encoder";
constexpr int kVersion = 1;
constexpr double kMinStd = 1e-12;

// A field of a JSON object, or an Error that says which one is missing.
const nlohmann::json& require(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) {
    throw Error(fmt::format("input encoder JSON: {} has no field '{}'", where, key),
                "was this file written by sensecf's InputEncoder::to_json?");
  }
  return j.at(key);
}

}  // namespace

void InputEncoder::fit(const data::Schema& schema, const data::Matrix& x) {
  if (x.n_cols != schema.size()) {
    throw Error(fmt::format("InputEncoder::fit: x has {} columns but the schema has {} features",
                            x.n_cols, schema.size()));
  }
  if (x.n_rows == 0) throw Error("InputEncoder::fit: no training rows to learn means and stds from");

  features_.clear();
  category_names_.clear();
  std::size_t offset = 0;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const data::Feature& f = schema.features[j];
    EncodedFeature e;
    e.name = f.name;
    e.offset = offset;
    if (f.is_categorical()) {
      if (f.categories.empty()) {
        throw Error(fmt::format("InputEncoder::fit: categorical feature '{}' lists no categories", f.name),
                    "fill Feature::categories (codes 0..k-1) before training");
      }
      e.categorical = true;
      e.n_categories = f.categories.size();
      category_names_.push_back(f.categories);
    } else {
      // Two passes (mean, then squared deviations) for accuracy on large offsets.
      double sum = 0.0;
      for (std::size_t r = 0; r < x.n_rows; ++r) sum += x.at(r, j);
      e.mean = sum / static_cast<double>(x.n_rows);
      double ss = 0.0;
      for (std::size_t r = 0; r < x.n_rows; ++r) {
        const double d = x.at(r, j) - e.mean;
        ss += d * d;
      }
      const double sd = std::sqrt(ss / static_cast<double>(x.n_rows));  // population std
      e.std = (sd < kMinStd || !std::isfinite(sd)) ? 1.0 : sd;
      category_names_.emplace_back();
    }
    offset += e.width();
    features_.push_back(std::move(e));
  }
  n_inputs_ = offset;
  fitted_ = true;
}

data::Matrix InputEncoder::transform(const data::Matrix& x) const {
  if (!fitted_) throw Error("InputEncoder::transform called before fit() or from_json()");
  if (x.n_cols != features_.size()) {
    throw Error(fmt::format("InputEncoder::transform: x has {} columns, the encoder was fitted on {}",
                            x.n_cols, features_.size()));
  }
  data::Matrix out(x.n_rows, n_inputs_, 0.0);
  for (std::size_t r = 0; r < x.n_rows; ++r) transform_row(x.row(r), out.row(r));
  return out;
}

void InputEncoder::transform_row(const double* in, double* enc) const {
  std::fill(enc, enc + n_inputs_, 0.0);
  for (std::size_t j = 0; j < features_.size(); ++j) {
    const EncodedFeature& e = features_[j];
    if (!e.categorical) {
      enc[e.offset] = (in[j] - e.mean) / e.std;
      continue;
    }
    const double code = in[j];
    // Out-of-range, fractional or NaN codes leave the block at zero.
    if (code >= 0.0 && code < static_cast<double>(e.n_categories) && code == std::floor(code)) {
      enc[e.offset + static_cast<std::size_t>(code)] = 1.0;
    }
  }
}

std::vector<std::string> InputEncoder::input_names() const {
  std::vector<std::string> names;
  names.reserve(n_inputs_);
  for (std::size_t j = 0; j < features_.size(); ++j) {
    const EncodedFeature& e = features_[j];
    if (!e.categorical) {
      names.push_back(e.name);
      continue;
    }
    for (std::size_t c = 0; c < e.n_categories; ++c) {
      const auto& cats = category_names_[j];
      names.push_back(e.name + "=" + (c < cats.size() ? cats[c] : std::to_string(c)));
    }
  }
  return names;
}

nlohmann::json InputEncoder::to_json() const {
  if (!fitted_) throw Error("InputEncoder::to_json called before fit()");
  nlohmann::json features = nlohmann::json::array();
  for (std::size_t j = 0; j < features_.size(); ++j) {
    const EncodedFeature& e = features_[j];
    nlohmann::json f = {{"name", e.name}};
    if (e.categorical) {
      f["kind"] = "categorical";
      f["n_categories"] = e.n_categories;
      f["categories"] = category_names_[j];
    } else {
      f["kind"] = "continuous";
      f["mean"] = e.mean;  // nlohmann writes doubles with round-trip precision
      f["std"] = e.std;
    }
    features.push_back(std::move(f));
  }
  return {{"format", kFormat}, {"version", kVersion}, {"features", std::move(features)}};
}

InputEncoder InputEncoder::from_json(const nlohmann::json& j) {
  const std::string top = "the top-level object";
  const auto& format = require(j, "format", top);
  if (!format.is_string() || format.get<std::string>() != kFormat) {
    throw Error(fmt::format("input encoder JSON: format is {}, expected \"{}\"", format.dump(), kFormat),
                "is this a classifier directory written by `sensecf train-clf`?");
  }
  const auto& version = require(j, "version", top);
  if (!version.is_number_integer() || version.get<int>() != kVersion) {
    throw Error(fmt::format("input encoder JSON: version {} is not supported (this build reads {})",
                            version.dump(), kVersion),
                "retrain the classifier with this sensecf version");
  }
  const auto& features = require(j, "features", top);
  if (!features.is_array())
    throw Error("input encoder JSON: 'features' is not an array",
                "the classifier's encoder was edited or damaged; train it again with `sensecf train-clf`");

  InputEncoder enc;
  std::size_t offset = 0;
  try {
    for (std::size_t i = 0; i < features.size(); ++i) {
      const nlohmann::json& f = features[i];
      const std::string where = fmt::format("features[{}]", i);
      EncodedFeature e;
      e.name = require(f, "name", where).get<std::string>();
      const std::string kind = require(f, "kind", where).get<std::string>();
      e.offset = offset;
      std::vector<std::string> names;
      if (kind == "categorical") {
        e.categorical = true;
        e.n_categories = require(f, "n_categories", where).get<std::size_t>();
        if (e.n_categories == 0) {
          throw Error(
              fmt::format("input encoder JSON: {} ('{}') has n_categories = 0", where, e.name),
              "the classifier's encoder was edited or damaged; train it again with `sensecf train-clf`");
        }
        if (f.contains("categories")) {
          names = f.at("categories").get<std::vector<std::string>>();
          if (names.size() != e.n_categories) {
            throw Error(
                fmt::format("input encoder JSON: {} ('{}') has n_categories = {} but {} names", where, e.name,
                            e.n_categories, names.size()),
                "the classifier's encoder was edited or damaged; train it again with `sensecf train-clf`");
          }
        }
      } else if (kind == "continuous") {
        e.mean = require(f, "mean", where).get<double>();
        e.std = require(f, "std", where).get<double>();
        if (!(e.std > 0.0) || !std::isfinite(e.mean)) {
          throw Error(
              fmt::format("input encoder JSON: {} ('{}') has mean {} and std {}; expected a finite "
                          "mean and std > 0",
                          where, e.name, e.mean, e.std),
              "the classifier's encoder was edited or damaged; train it again with `sensecf train-clf`");
        }
      } else {
        throw Error(
            fmt::format("input encoder JSON: {} has kind '{}', expected 'continuous' or "
                        "'categorical'",
                        where, kind),
            "the classifier's encoder was edited or damaged; train it again with `sensecf train-clf`");
      }
      offset += e.width();
      enc.features_.push_back(std::move(e));
      enc.category_names_.push_back(std::move(names));
    }
  } catch (const nlohmann::json::exception& ex) {
    // Wrong JSON types (a string where a number belongs, ...): say so as our error.
    throw Error(fmt::format("input encoder JSON: malformed field: {}", ex.what()),
                "the classifier's encoder was edited or damaged; train it again with `sensecf train-clf`");
  }
  enc.n_inputs_ = offset;
  enc.fitted_ = true;
  return enc;
}

}  // namespace sensecf::clf
