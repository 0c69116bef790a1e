// libFuzzer target for the LLM answer parser (src/llmcf/parse.cpp): the input
// is the text of a model's answer to a counterfactual query, parsed against a
// fixed schema like the cohort's (units, bounds, negative values, immutable
// continuous and categorical features, categories with '_').
//
// parse_answer must not throw at all (a bad answer is ok = false with an
// error). The invariants of parse.h are re-checked: when not ok, x is empty
// and error says why; when ok, x has one finite value per feature,
// categorical values are codes of their categories, and immutable_changed and
// out_of_range count exactly the immutable features changed (beyond the
// format's rounding) and the values outside [lower, upper] / `allowed`. Any
// exception, crash, leak, hang or sanitizer report is a bug.
//
//   fuzz/campaign.sh answer 600     # a campaign: see fuzz/CMakeLists.txt
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/parse.h"

namespace {

using sensecf::data::Feature;
using sensecf::data::FeatureKind;
using sensecf::data::Schema;

Schema make_schema() {
  Schema s;
  s.label = "high_stress";
  s.group = "participant_id";
  auto add = [&s](const char* name, const char* unit, double lo, double hi, bool immutable) {
    Feature f;
    f.name = name;
    f.unit = unit;
    f.lower = lo;
    f.upper = hi;
    f.immutable = immutable;
    s.features.push_back(f);
  };
  add("awake_pct", "%", 0, 40, false);
  add("deep_pct", "%", 0, 40, false);
  add("steps_mean", "steps/min", 0, 30, false);
  add("glucose_mean", "mg/dL", 50, 300, false);
  add("delta", "", -10, 10, false);
  add("age", "years", 40, 90, true);
  auto cat = [&s](const char* name, std::vector<std::string> categories, std::vector<int> allowed, bool immutable) {
    Feature f;
    f.name = name;
    f.kind = FeatureKind::kCategorical;
    f.immutable = immutable;
    f.categories = std::move(categories);
    f.allowed = std::move(allowed);
    s.features.push_back(f);
  };
  cat("gender", {"female", "male"}, {0, 1}, true);
  cat("medication", {"insulin", "no_medication", "oral"}, {1, 2}, true);
  cat("activity level", {"high", "low", "medium"}, {0, 1, 2}, false);
  return s;
}

bool differs(double a, double b) { return std::abs(a - b) > 1e-9 * std::max(1.0, std::abs(a)); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Schema schema = make_schema();
  static const std::vector<double> factual = {10, 15, 4.5, 130, -2, 61.004, 0, 1, 2};
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto p = sensecf::llmcf::parse_answer(schema, factual.data(), text);
  if (!p.ok) {
    if (!p.x.empty() || p.error.empty()) std::abort();
    return 0;
  }
  if (p.x.size() != schema.size() || !p.error.empty()) std::abort();
  int immutable_changed = 0, out_of_range = 0;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const Feature& f = schema.features[j];
    const double v = p.x[j];
    if (!std::isfinite(v)) std::abort();
    if (f.is_categorical()) {
      if (v != std::floor(v) || v < 0 || v >= static_cast<double>(f.categories.size())) std::abort();
      if (std::find(f.allowed.begin(), f.allowed.end(), static_cast<int>(v)) == f.allowed.end()) ++out_of_range;
    } else if (v < f.lower - 1e-9 || v > f.upper + 1e-9) {
      ++out_of_range;
    }
    if (f.immutable && differs(v, factual[j]) && differs(v, sensecf::llmcf::round_value(f, factual[j])))
      ++immutable_changed;
  }
  if (p.immutable_changed != immutable_changed || p.out_of_range != out_of_range) std::abort();
  return 0;
}
