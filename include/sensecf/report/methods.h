// CF method names as the report shows them: the LLM method's parts, its row
// label, and the line style of its curve.
//
// LLM methods are named `llm:<model>:<mode>[+<tag>...]`, mode one of zero-shot,
// few-shot, fine-tuned (e.g. `llm:llama-3.1-8b:fine-tuned`,
// `llm:tiny:zero-shot+constrained`); everything after the first '+' is a variant
// tag list (the options being compared). Every other name is a baseline and is
// shown as it is. Model names are shown as given (no case changes).
//
// Not here: which methods a table shows and in what order (run_config.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sensecf::report {

struct LlmMethod {
  std::string model;    // "llama-3.1-8b"
  std::string mode;     // "zero-shot" | "few-shot" | "fine-tuned" (or whatever the name says)
  std::string variant;  // "constrained", "a+b", or "" (the text after the first '+')
};

// The parts of an `llm:<model>:<mode>[+tags]` name; nullopt for baselines and
// for names that do not have that shape.
std::optional<LlmMethod> parse_llm_method(const std::string& method);
inline bool is_llm_method(const std::string& method) { return parse_llm_method(method).has_value(); }

// The row label: "llama-3.1-8b (fine-tuned)", "tiny (zero-shot) +constrained",
// "tiny (fine-tuned) +verify +k3"; a baseline's name unchanged.
std::string method_label(const std::string& method);

// gnuplot dash type of a method's curve (Fig. 7): fine-tuned 1 (solid),
// zero-shot 2 (dashed), few-shot 3 (dotted), any other mode 4 (dash-dot);
// baselines 1 (solid).
int dash_type(const std::string& method);

// The methods with baselines first and LLM methods after, each group keeping
// its relative order.
std::vector<std::string> baselines_first(std::vector<std::string> methods);

}  // namespace sensecf::report
