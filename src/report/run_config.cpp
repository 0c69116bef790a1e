// Reading the stored INI text, and the order of methods in tables and figures.
#include "sensecf/report/run_config.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "sensecf/core/strings.h"

namespace sensecf::report {
namespace {

std::string normalise_key(std::string_view key) {
  std::string k = to_lower(trim(key));
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

// "value   # default" -> "value" (effective_ini() comments every line with its source).
std::string strip_comment(std::string_view value) {
  const auto hash = value.find(" #");
  if (hash != std::string_view::npos) value = value.substr(0, hash);
  if (!value.empty() && value.front() == '#') return "";
  return std::string(trim(value));
}

int family_rank(const std::string& method) {
  const std::string m = to_lower(method);
  if (m.rfind("dice", 0) == 0) return 0;
  if (m.rfind("cfnow", 0) == 0) return 1;
  if (m.rfind("nice", 0) == 0) return 2;
  if (m.rfind("llm:", 0) == 0) return 4;
  return 3;
}

}  // namespace

StoredConfig::StoredConfig(const std::string& ini_text) {
  std::istringstream in(ini_text);
  std::string line, section;
  while (std::getline(in, line)) {
    const std::string_view t = trim(line);
    if (t.empty() || t.front() == '#' || t.front() == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      section = normalise_key(t.substr(1, t.size() - 2));
      continue;
    }
    const auto eq = t.find('=');
    if (eq == std::string_view::npos) continue;
    entries_.push_back({section, normalise_key(t.substr(0, eq)), strip_comment(t.substr(eq + 1))});
  }
}

std::optional<std::string> StoredConfig::value(const std::string& section, const std::string& key) const {
  const std::string s = normalise_key(section), k = normalise_key(key);
  for (const auto& e : entries_) {
    if (e.section == s && e.key == k) return e.value;
  }
  return std::nullopt;
}

std::vector<std::string> StoredConfig::listed_methods() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& e : entries_) {
    const bool is_list = e.key == "methods" ||
                         (e.key.size() > 8 && e.key.compare(e.key.size() - 8, 8, "_methods") == 0);
    if (!is_list) continue;
    for (const auto& m : split_list(e.value)) {
      if (!m.empty() && seen.insert(m).second) out.push_back(m);
    }
  }
  return out;
}

std::vector<std::string> StoredConfig::immutable_features() const {
  const auto v = value("data", "immutable");
  return v ? split_list(*v) : std::vector<std::string>{};
}

std::vector<std::string> order_methods(const std::vector<std::string>& present,
                                       const std::vector<std::string>& config_order,
                                       const std::vector<std::string>& chosen) {
  const std::set<std::string> have(present.begin(), present.end());
  std::vector<std::string> out;
  std::set<std::string> used;
  auto take = [&](const std::string& m) {
    if (have.count(m) && used.insert(m).second) out.push_back(m);
  };
  if (!chosen.empty()) {
    for (const auto& m : chosen) take(m);
    return out;
  }
  for (const auto& m : config_order) take(m);
  std::vector<std::string> rest;
  for (const auto& m : have) {
    if (!used.count(m)) rest.push_back(m);
  }
  std::stable_sort(rest.begin(), rest.end(), [](const std::string& a, const std::string& b) {
    return family_rank(a) != family_rank(b) ? family_rank(a) < family_rank(b) : a < b;
  });
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

}  // namespace sensecf::report
