// The answer format (see llmcf/answer.h).
#include "sensecf/llmcf/answer.h"

#include <spdlog/fmt/fmt.h>

#include <cmath>

namespace sensecf::llmcf {

std::string feature_label(const data::Feature& f) {
  return f.unit.empty() ? f.name : f.name + " (" + f.unit + ")";
}

double round_value(const data::Feature& f, double v) {
  if (f.is_categorical() || !std::isfinite(v)) return v;
  const double scale = std::pow(10.0, kDecimals);
  const double r = std::round(v * scale) / scale;
  return r == 0 ? 0.0 : r;  // no "-0"
}

std::string format_value(const data::Feature& f, double v) {
  if (f.is_categorical()) {
    const double code = std::round(v);
    if (code == v && code >= 0 && code < static_cast<double>(f.categories.size()))
      return f.categories[static_cast<std::size_t>(code)];
    return fmt::format("{}", v);
  }
  std::string s = fmt::format("{:.{}f}", round_value(f, v), kDecimals);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string format_line(const data::Feature& f, double v) {
  return "- " + feature_label(f) + ": " + format_value(f, v) + "\n";
}

std::string format_answer(const data::Schema& schema, const double* x) {
  std::string out = std::string(kOpenTag) + "\n";
  for (std::size_t j = 0; j < schema.size(); ++j) out += format_line(schema.features[j], x[j]);
  return out + kCloseTag;
}

nlohmann::json answer_json_schema(const data::Schema& schema, const double* factual) {
  nlohmann::json properties = nlohmann::json::object();
  nlohmann::json required = nlohmann::json::array();
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const auto& f = schema.features[j];
    nlohmann::json p;
    if (f.is_categorical()) {
      p["type"] = "string";
      nlohmann::json values = nlohmann::json::array();
      if (f.immutable) {
        values.push_back(format_value(f, factual[j]));
      } else {
        for (int code : f.allowed)
          if (code >= 0 && static_cast<std::size_t>(code) < f.categories.size())
            values.push_back(f.categories[static_cast<std::size_t>(code)]);
      }
      p["enum"] = values;
    } else {
      p["type"] = "number";
      if (f.immutable) {
        p["enum"] = {round_value(f, factual[j])};
      } else {
        p["minimum"] = f.lower;
        p["maximum"] = f.upper;
      }
    }
    if (!f.unit.empty()) p["description"] = f.unit;
    properties[f.name] = std::move(p);
    required.push_back(f.name);
  }
  return {{"type", "object"}, {"properties", properties}, {"required", required}, {"additionalProperties", false}};
}

}  // namespace sensecf::llmcf
