// LLM method names: parts, labels, dash types (see methods.h).
#include "sensecf/report/methods.h"

#include <algorithm>

namespace sensecf::report {

std::optional<LlmMethod> parse_llm_method(const std::string& method) {
  const std::string prefix = "llm:";
  if (method.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::string rest = method.substr(prefix.size());
  LlmMethod m;
  if (const auto plus = rest.find('+'); plus != std::string::npos) {
    m.variant = rest.substr(plus + 1);
    rest.resize(plus);
  }
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return std::nullopt;
  m.model = rest.substr(0, colon);
  m.mode = rest.substr(colon + 1);
  return m;
}

std::string method_label(const std::string& method) {
  const auto m = parse_llm_method(method);
  if (!m) return method;
  std::string label = m->model + " (" + m->mode + ")";
  std::string tags = m->variant;
  while (!tags.empty()) {
    const auto plus = tags.find('+');
    const std::string tag = tags.substr(0, plus);
    if (!tag.empty()) label += " +" + tag;
    tags = plus == std::string::npos ? "" : tags.substr(plus + 1);
  }
  return label;
}

int dash_type(const std::string& method) {
  const auto m = parse_llm_method(method);
  if (!m || m->mode == "fine-tuned") return 1;
  if (m->mode == "zero-shot") return 2;
  if (m->mode == "few-shot") return 3;
  return 4;
}

std::vector<std::string> baselines_first(std::vector<std::string> methods) {
  std::stable_partition(methods.begin(), methods.end(), [](const std::string& m) { return !is_llm_method(m); });
  return methods;
}

}  // namespace sensecf::report
