// The answer format of the SenseCF method (the paper's Fig. 4: the
// counterfactual enclosed in <new> tags, one "- feature: value" line per
// feature). One definition shared by the prompt builder (prompt.h: the format
// it asks for and the few-shot examples it shows), the fine-tuning targets, the
// parser (parse.h) and the constrained-decoding grammar (grammar.h), so that
// what the model is taught, what is parsed and what the mask allows are the
// same text:
//
//     <new>
//     - awake_pct (%): 12.5
//     - steps_mean (steps/min): 4.27
//     ...
//     - gender: female
//     </new>
//
// Every feature of the schema, in schema order; immutable features repeat the
// factual value. Continuous values: at most kDecimals decimals, trailing zeros
// trimmed ("12.5", "4500", "0.33"), no exponent, a '-' only for negative values.
// Categorical values: the category text.
//
// Torch-free.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sensecf/data/dataset.h"

namespace sensecf::llmcf {

inline constexpr const char* kOpenTag = "<new>";
inline constexpr const char* kCloseTag = "</new>";
inline constexpr int kDecimals = 2;

// "awake_pct (%)"; just the name when the feature has no unit.
std::string feature_label(const data::Feature& f);
// The value as the answer writes it (see above). A categorical code outside
// the categories is written as the number.
std::string format_value(const data::Feature& f, double v);
// v rounded to the precision format_value writes (what a CF read back from an
// answer can hold).
double round_value(const data::Feature& f, double v);
// "- <label>: <value>\n"
std::string format_line(const data::Feature& f, double v);
// "<new>\n" + one line per feature + "</new>"
std::string format_answer(const data::Schema& schema, const double* x);

// The same answer as a JSON object for servers that decode under a JSON
// schema (OpenAI structured outputs, vLLM, llama.cpp): {"<feature name>":
// value, ...}. The schema (strict: every feature required, nothing else):
// continuous features a number in [lower, upper], categorical ones a string
// among the allowed categories, immutable ones the factual value as the only
// choice. The parser (parse.h) reads such an object like a <new> block.
nlohmann::json answer_json_schema(const data::Schema& schema, const double* factual);

}  // namespace sensecf::llmcf
