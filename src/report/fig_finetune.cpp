// The fine-tuning curves of a sweep's finetune tasks (sweep.llm_models): the
// training loss per optimiser step and the held-out loss at the evaluation
// steps, one line per (model, scenario, seed).
//
// finetune.csv: model, scenario, seed, step, loss, val_loss (val_loss empty
// where the step was not evaluated). Nothing is written when the results file
// has no finetune rows.
#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <map>
#include <tuple>

#include "sensecf/core/vocabulary.h"
#include "sensecf/report/figures.h"
#include "sensecf/report/gnuplot.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {

void write_finetune_curves(ReportContext& context) {
  const auto& results = context.results();
  using Run = std::tuple<std::string, std::string, long long>;  // model, scenario, seed
  std::map<std::string, Run> runs;
  for (const auto& t : results.tasks) {
    if (t.kind == vocab::kFinetune && t.status == "done") runs[t.key] = {t.model, t.scenario, t.seed};
  }
  std::map<Run, std::map<long long, std::pair<double, double>>> curves;  // run -> step -> (loss, val_loss)
  for (const auto& r : results.train) {
    const auto it = runs.find(r.key);
    if (r.kind != vocab::kFinetune || it == runs.end()) continue;
    curves[it->second][r.step] = {r.loss, r.val_loss};
  }
  if (curves.empty()) return;

  CsvTable csv;
  csv.header = {"model", "scenario", "seed", "step", "loss", "val_loss"};
  std::string blocks, plots;
  int i = 0;
  for (const auto& [run, steps] : curves) {
    const auto& [model, scenario, seed] = run;
    std::vector<DataRow> train_rows, eval_rows;
    for (const auto& [step, losses] : steps) {
      csv.rows.push_back({model, scenario, std::to_string(seed), std::to_string(step), csv_number(losses.first),
                          csv_number(losses.second)});
      train_rows.push_back({{static_cast<double>(step), losses.first}, ""});
      if (std::isfinite(losses.second)) eval_rows.push_back({{static_cast<double>(step), losses.second}, ""});
    }
    const std::string name = fmt::format("run{}", i), title = fmt::format("{} {} seed {}", model, scenario, seed);
    blocks += datablock(name + "_train", train_rows);
    plots += fmt::format("{}${}_train using 1:2 with lines lt {} lw 2 title {}", plots.empty() ? "" : ", \\\n     ",
                         name, i + 1, gp_quote(title));
    if (!eval_rows.empty()) {
      blocks += datablock(name + "_eval", eval_rows);
      plots += fmt::format(", \\\n     ${}_eval using 1:2 with points lt {} pt 7 notitle", name, i + 1);
    }
    ++i;
  }
  const std::string body = fmt::format(
      "set title 'Fine-tuning loss (lines: training, points: held-out)'\nset xlabel 'Optimiser step'\n"
      "set ylabel 'Completion-token cross-entropy'\nset grid\nset key outside right font ',8'\nplot {}\n",
      plots);
  context.write("finetune.csv", to_csv(csv), "Fine-tuning curves: loss and held-out loss per step of each adapter");
  context.plot("finetune", figure_script("finetune", "fine-tuning loss per step", blocks, body, 900, 420),
               "Fine-tuning loss per step of each (model, scenario, seed)");
}

}  // namespace sensecf::report
