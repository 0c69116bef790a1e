// Reads a counterfactual back from an LLM's answer (the answer format of
// answer.h), tolerant of how models write it and strict about what it means.
//
// Where: the first <new> block (to its </new>, or to the end of the text when
// the answer was cut off); without a <new> tag, the lines of the whole text
// that name a feature ("name: value").
// Tolerated on a line: bullets (-, *, •, "1.", "1)"), markdown bold and code
// marks, the template's "Modified " prefix, ':' or '=', any case, spaces or
// underscores in names ("awake pct" = "awake_pct"), the unit in the label
// ("(%)") or after the value ("12.5 %", "12.5%", "130 mg/dL"; it must be the
// feature's unit), thousands separators in comma groups of three ("4,500"), a
// leading '+', a trailing ',' or ';'. Categorical values: the category text, in
// any case, spaces for underscores.
// Rejected (ok = false, `error` says what and on which line): an empty answer;
// no feature line at all; inside the block, a "name: value" line whose name is
// no feature (no fuzzy matching); a value that is not a plain number (NaN,
// inf, "N/A", "1.2.3", "4 500", "12 (was 10)") or not a category; another unit;
// a feature given twice with different values; a mutable feature missing.
// Kept and counted, not errors: a changed immutable feature (immutable_changed),
// a value outside the permitted range [lower, upper] or a category outside
// `allowed` (out_of_range); a missing immutable feature is copied from the
// factual. Each leaves a note.
//
// Not here: checking the CF against the classifier, repairing values. Torch-free.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf::llmcf {

struct ParsedAnswer {
  bool ok = false;
  std::vector<double> x;  // [d] in schema order (categorical: codes) when ok, else empty
  std::string error;      // why not ok: "line 3: unknown feature 'sleep_score' ..."
  int immutable_changed = 0;
  int out_of_range = 0;
  std::vector<std::string> notes;  // what was tolerated, copied or counted
};

// factual: the query row (schema.size() values), for immutable features the
// answer leaves out or changes.
ParsedAnswer parse_answer(const data::Schema& schema, const double* factual, std::string_view text);

}  // namespace sensecf::llmcf
