// Rendering JSON values in error messages (llm module internal).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sensecf::llm::detail {

// True when `v` nests at most `levels` deep (bounded recursion).
inline bool json_shallow(const nlohmann::json& v, int levels) {
  if (!v.is_structured()) return true;
  if (levels == 0) return false;
  for (const auto& item : v) {
    if (!json_shallow(item, levels - 1)) return false;
  }
  return true;
}

// A short rendering of a JSON value for error messages. Deeply nested values
// are only described: dump() recurses and would overflow the stack on hostile
// input (found by the fuzzer).
inline std::string json_show(const nlohmann::json& v) {
  if (!json_shallow(v, 3)) return std::string("a deeply nested ") + v.type_name();
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace sensecf::llm::detail
