// Matrix, Schema and Dataset helpers: subsetting, bounds learning, JSON form.
#include "sensecf/data/dataset.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::data {

Matrix Matrix::rows(const std::vector<std::size_t>& index) const {
  Matrix out(index.size(), n_cols);
  for (std::size_t i = 0; i < index.size(); ++i) {
    std::copy_n(row(index[i]), n_cols, out.row(i));
  }
  return out;
}

std::size_t Schema::index_of(const std::string& name) const {
  for (std::size_t j = 0; j < features.size(); ++j)
    if (features[j].name == name) return j;
  const auto all = names();
  const std::string best = closest_match(name, all);
  throw Error("unknown feature '" + name + "'; features are: " + join(all, ", "),
              best.empty() ? "" : "did you mean '" + best + "'?");
}

std::vector<std::string> Schema::names() const {
  std::vector<std::string> out;
  for (const auto& f : features) out.push_back(f.name);
  return out;
}

void Schema::learn_bounds(const Matrix& x, const std::vector<std::size_t>& rows) {
  for (std::size_t j = 0; j < features.size(); ++j) {
    Feature& f = features[j];
    if (f.is_categorical()) {
      std::set<int> seen;
      for (auto r : rows) seen.insert(static_cast<int>(x.at(r, j)));
      f.allowed.assign(seen.begin(), seen.end());
    } else {
      double lo = std::numeric_limits<double>::infinity();
      double hi = -lo;
      for (auto r : rows) {
        lo = std::min(lo, x.at(r, j));
        hi = std::max(hi, x.at(r, j));
      }
      f.lower = rows.empty() ? 0.0 : lo;
      f.upper = rows.empty() ? 0.0 : hi;
    }
  }
}

nlohmann::json Schema::to_json() const {
  nlohmann::json feats = nlohmann::json::array();
  for (const auto& f : features) {
    nlohmann::json jf = {{"name", f.name},
                         {"kind", f.is_categorical() ? "categorical" : "continuous"},
                         {"immutable", f.immutable},
                         {"unit", f.unit}};
    if (f.is_categorical()) {
      jf["categories"] = f.categories;
      jf["allowed"] = f.allowed;
    } else {
      jf["lower"] = f.lower;
      jf["upper"] = f.upper;
    }
    feats.push_back(jf);
  }
  return {{"label", label}, {"group", group}, {"features", feats}};
}

namespace {
// What a counterfactual search relies on: finite, ordered bounds; codes that
// name a category.
void check_feature(const Feature& f) {
  const std::string hint = "schema.json is written by `sensecf train-clf`; restore it or retrain to regenerate it";
  if (f.name.empty()) throw Error("a feature has an empty name", hint);
  if (f.is_categorical()) {
    if (f.categories.empty()) throw Error("categorical feature '" + f.name + "' has no categories", hint);
    for (const int code : f.allowed) {
      if (code < 0 || static_cast<std::size_t>(code) >= f.categories.size()) {
        throw Error(fmt::format("categorical feature '{}' allows code {}, but its {} categories have codes 0 to {}",
                                f.name, code, f.categories.size(), f.categories.size() - 1),
                    hint);
      }
    }
  } else if (!std::isfinite(f.lower) || !std::isfinite(f.upper) || f.lower > f.upper) {
    throw Error(fmt::format("feature '{}' has bounds [{}, {}]: they must be finite with lower <= upper", f.name,
                            f.lower, f.upper),
                hint);
  }
}
}  // namespace

Schema Schema::from_json(const nlohmann::json& j) {
  try {
    Schema s;
    s.label = j.at("label").get<std::string>();
    s.group = j.at("group").get<std::string>();
    for (const auto& jf : j.at("features")) {
      Feature f;
      f.name = jf.at("name").get<std::string>();
      const auto kind = jf.at("kind").get<std::string>();
      if (kind != "categorical" && kind != "continuous") {
        throw Error("feature '" + f.name + "' has unknown kind '" + kind + "'");
      }
      f.kind = kind == "categorical" ? FeatureKind::kCategorical : FeatureKind::kContinuous;
      f.immutable = jf.at("immutable").get<bool>();
      f.unit = jf.value("unit", "");
      if (f.is_categorical()) {
        f.categories = jf.at("categories").get<std::vector<std::string>>();
        f.allowed = jf.at("allowed").get<std::vector<int>>();
      } else {
        f.lower = jf.at("lower").get<double>();
        f.upper = jf.at("upper").get<double>();
      }
      check_feature(f);
      for (const auto& g : s.features) {
        if (g.name == f.name) throw Error("feature '" + f.name + "' is listed twice");
      }
      s.features.push_back(std::move(f));
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("schema JSON is malformed: ") + e.what(),
                "schema.json is written by `sensecf train-clf`; retrain to regenerate it");
  }
}

Dataset Dataset::subset(const std::vector<std::size_t>& rows) const {
  Dataset out;
  out.schema = schema;
  out.source = source;
  out.x = x.rows(rows);
  out.y.reserve(rows.size());
  out.group.reserve(rows.size());
  for (auto r : rows) {
    out.y.push_back(y[r]);
    out.group.push_back(group[r]);
  }
  return out;
}

std::size_t Dataset::count_label(int label) const {
  return static_cast<std::size_t>(std::count(y.begin(), y.end(), label));
}

std::size_t Dataset::count_label(int label, const std::vector<std::size_t>& rows) const {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [&](std::size_t r) { return y[r] == label; }));
}

}  // namespace sensecf::data
