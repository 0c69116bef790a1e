// The paper's figures from a results file: data as CSV, drawing as a gnuplot
// script (rendered to PNG and SVG when gnuplot is there). Details: docs/report.md.
//
//   Fig. 1  test F1 vs training-data reduction per classifier (fig1 rows), error
//           bars = sd over seeds
//   Fig. 6  share of found table3 CFs that change each mutable feature, per
//           method (heat map; mean over seeds)
//   Fig. 7  F1 vs augmentation ratio, one panel per scarcity scenario, one line
//           per method; dashed: the reduced-data NN, dotted: the full-data NN
//   Fig. 8  the paper's ablation when an LLM has zero-shot and fine-tuned
//           table3 CFs: both CF sets for the same factual rows in ONE PCA plane
//           (fig8_ablation.cpp); otherwise (or with --fig8-methods, or
//           --fig8-purpose augment) 2-D PCA of factual rows and their CFs, one
//           panel per method (z-scored over the panel's points; pca.h), with a
//           note in index.md saying why the ablation is absent
// Fig. 6's features: --fig6-features when given; else every feature except the
// config's `[data] immutable` ones and those that no CF of any method changes
// (generators never change immutables, so those are the schema's immutables;
// the note in index.md names them).
#pragma once

#include <string>

#include "sensecf/report/report.h"

namespace sensecf::report {

void write_fig1(ReportContext& context);
void write_fig6(ReportContext& context);
void write_fig7(ReportContext& context);
void write_fig8(ReportContext& context);
// The ablation Fig. 8; false (and *why_not) when the results have no
// zero-shot / fine-tuned pair. Defined in fig8_ablation.cpp.
bool write_fig8_ablation(ReportContext& context, std::string* why_not);
// finetune.csv / finetune.png: the loss curves of the sweep's finetune tasks
// (nothing when there are none). Defined in fig_finetune.cpp.
void write_finetune_curves(ReportContext& context);

}  // namespace sensecf::report
