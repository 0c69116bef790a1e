// The paper's tables from a results file (layouts and formulas: docs/report.md).
//
//   Table III  /metrics/cf rows with purpose table3 (scenario full): per method
//              and factual class 0 / 1, validity ↑, distance ↓, sparsity ↓,
//              plausibility ↑ (in %), mean ± sd over seeds, best and second best
//              per column marked.
//              Validity is over all queries; coverage and the LLM parse rate
//              sit beside it; LLM methods after the baselines.
//   Table IV   /metrics/clf rows: the full-data NN (train_clf, scenario full) in
//              absolute terms; per scarcity scenario the reduced-data NN as the
//              relative change vs full, and per method the NN retrained with CFs
//              (augment, one ratio) as the relative change vs reduced; relative
//              changes are computed per seed, then summarised.
// Each writes <name>.md, <name>.csv and <name>.tex into the report directory, or
// a note when its rows are missing.
#pragma once

#include "sensecf/report/report.h"

namespace sensecf::report {

void write_table3(ReportContext& context);
void write_table4(ReportContext& context);
// intervention.md: a Table II-style narrative of one valid CF for a test row f
// predicts as high stress (class 1), from the best LLM method, else the best
// baseline. Defined in intervention.cpp.
void write_intervention(ReportContext& context);

}  // namespace sensecf::report
