// Table IV: the NN under label scarcity, and its recovery with CFs added.
//
// Rows of /metrics/clf (kind, scenario, fraction, ratio select them; seed pairs them):
//   baseline   train_clf, scenario full                   absolute: ACC in %, PRE/REC/F1/AUC as fractions
//   reduced    train_clf, scenario s, fraction φ          100 · (reduced_s − full_s) / full_s per seed
//   augmented  augment, method m, scenario s, φ, ratio ρ  100 · (augment_s − reduced_s) / reduced_s per seed
//              (baselines first, then the LLM methods labelled "model (mode) +tags")
// then mean ± sd over the seeds both sides have. The scenarios are A positive
// (class 1 reduced), B negative (class 0 reduced), C dual (both reduced).
//
// CSV (table4.csv), one row per table row:
//   block (baseline|reduced|augmented), scenario, method, fraction, ratio, n_seeds,
//   unit (fraction|percent_change), <metric>_mean, <metric>_sd for accuracy,
//   precision, recall, f1, auc, n_added_mean, n_wanted_mean (augmented rows).
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "sensecf/report/tables.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

struct Metric {
  const char* csv_name;
  const char* header;
  double store::ClfMetricRow::*field;
};

const Metric kMetrics[] = {
    {"accuracy", "ACC", &store::ClfMetricRow::accuracy}, {"precision", "PRE", &store::ClfMetricRow::precision},
    {"recall", "REC", &store::ClfMetricRow::recall},     {"f1", "F1", &store::ClfMetricRow::f1},
    {"auc", "AUC", &store::ClfMetricRow::auc},
};
constexpr std::size_t kNumMetrics = std::size(kMetrics);

using BySeed = std::map<long long, double>;
using MetricsBySeed = std::array<BySeed, kNumMetrics>;

void add(MetricsBySeed& m, const store::ClfMetricRow& r) {
  for (std::size_t k = 0; k < kNumMetrics; ++k) m[k][r.seed] = r.*kMetrics[k].field;
}

struct Scenario {
  const char* name;    // as in the rows
  const char* letter;
  const char* title;
  const char* reduced; // which class(es) lost rows
};
const Scenario kScenarios[] = {
    {vocab::kPositive, "A", "Positive-class scarcity", "class 1"},
    {vocab::kNegative, "B", "Negative-class scarcity", "class 0"},
    {vocab::kDual, "C", "Dual-class scarcity", "both classes"},
};

std::string model_label(const std::string& model) {
  if (model.empty() || model == "nn") return "NN";
  std::string m = model;
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return m;
}

std::size_t max_n(const std::array<MeanSd, kNumMetrics>& s) {
  std::size_t n = 0;
  for (const auto& x : s) n = std::max(n, x.n);
  return n;
}

std::vector<std::string> csv_line(const std::string& block, const std::string& scenario, const std::string& method,
                                  double fraction, double ratio, const std::array<MeanSd, kNumMetrics>& s,
                                  const std::string& unit, double n_added, double n_wanted) {
  std::vector<std::string> line = {block, scenario, method, csv_number(fraction), csv_number(ratio),
                                   std::to_string(max_n(s)), unit};
  for (const auto& x : s) {
    line.push_back(csv_number(x.mean));
    line.push_back(csv_number(x.sd));
  }
  line.push_back(csv_number(n_added));
  line.push_back(csv_number(n_wanted));
  return line;
}

}  // namespace

void write_table4(ReportContext& context) {
  const auto& rows = context.results().clf;
  const double fraction = context.fraction();
  MetricsBySeed full;
  std::string model = "nn";
  for (const auto& r : rows) {
    if (r.kind == vocab::kTrainClf && r.scenario == vocab::kFull) {
      add(full, r);
      if (!r.model.empty()) model = r.model;
    }
  }
  if (full[0].empty()) {
    context.note("Table IV skipped: no /metrics/clf rows of kind train_clf for scenario full (the baseline).");
    return;
  }
  double ratio = context.options().ratio;
  if (ratio <= 0) {
    for (const auto& r : rows) {
      if (r.kind == vocab::kAugment && same_setting(r.fraction, fraction)) ratio = std::max(ratio, r.ratio);
    }
  }

  DisplayTable t;
  t.caption = fmt::format(
      "Table IV. NN test metrics under label scarcity ({:g}% of the scarce class(es) removed) and with CFs added "
      "at augmentation ratio {:g}: baseline absolute (ACC in %), other rows relative change in % "
      "(reduced vs full, CF added vs reduced), per seed, then mean ± sd over seeds.",
      100 * fraction, ratio);
  t.legend = "↑ / ↓: increase / decrease. CFs added: mean number of CFs added / asked for by the ratio.";
  t.label = "tab:table4";
  t.header = {"Scenario", "Method", "ACC", "PRE", "REC", "F1", "AUC", "CFs added"};
  t.align = "llrrrrrl";
  CsvTable csv;
  csv.header = {"block", "scenario", "method", "fraction", "ratio", "n_seeds", "unit"};
  for (const auto& m : kMetrics) {
    csv.header.push_back(std::string(m.csv_name) + "_mean");
    csv.header.push_back(std::string(m.csv_name) + "_sd");
  }
  csv.header.push_back("n_added_mean");
  csv.header.push_back("n_wanted_mean");

  {  // baseline
    std::array<MeanSd, kNumMetrics> s;
    DisplayRow row;
    row.cells = {Cell::label("Baseline (full training set)"), Cell::label(model_label(model))};
    for (std::size_t k = 0; k < kNumMetrics; ++k) {
      s[k] = summarise(full[k]);
      MeanSd shown = s[k];
      if (k == 0) {  // accuracy in percent, as in the paper
        shown.mean *= 100;
        shown.sd *= 100;
      }
      row.cells.push_back(Cell::number(shown, k == 0 ? 1 : 2));
    }
    row.cells.push_back(Cell::label(""));
    t.rows.push_back(row);
    csv.rows.push_back(csv_line("baseline", vocab::kFull, model, 0, 0, s, "fraction", kNaN, kNaN));
  }

  bool any_scenario = false;
  for (const auto& sc : kScenarios) {
    MetricsBySeed reduced;
    for (const auto& r : rows) {
      if (r.kind == vocab::kTrainClf && r.scenario == sc.name && same_setting(r.fraction, fraction)) add(reduced, r);
    }
    if (reduced[0].empty()) {
      context.note(fmt::format("Table IV: scenario {} ({}) left out: no train_clf rows at fraction {:g}.", sc.letter,
                               sc.name, fraction));
      continue;
    }
    any_scenario = true;
    t.rows.push_back({{Cell::label(fmt::format("Scenario {} — {} ({} reduced by {:g}%)", sc.letter, sc.title,
                                               sc.reduced, 100 * fraction))},
                      /*section=*/true});
    {
      std::array<MeanSd, kNumMetrics> s;
      DisplayRow row;
      row.cells = {Cell::label("Model trained on reduced data"), Cell::label(model_label(model))};
      for (std::size_t k = 0; k < kNumMetrics; ++k) {
        s[k] = summarise(relative_change_by_seed(reduced[k], full[k]));
        row.cells.push_back(Cell::number(s[k], 2, /*percent=*/true, /*sign_arrow=*/true));
      }
      row.cells.push_back(Cell::label(""));
      t.rows.push_back(row);
      csv.rows.push_back(csv_line("reduced", sc.name, model, fraction, 0, s, "percent_change", kNaN, kNaN));
    }
    std::map<std::string, MetricsBySeed> augmented;
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> added;  // n_added, n_wanted
    for (const auto& r : rows) {
      if (r.kind != vocab::kAugment || r.scenario != sc.name || !same_setting(r.fraction, fraction) ||
          !same_setting(r.ratio, ratio)) {
        continue;
      }
      add(augmented[r.method], r);
      added[r.method].first.push_back(static_cast<double>(r.n_added));
      added[r.method].second.push_back(static_cast<double>(r.n_wanted));
    }
    std::vector<std::string> present;
    for (const auto& [method, v] : augmented) present.push_back(method);
    const auto methods = context.order(present);
    if (methods.empty()) {
      context.note(fmt::format("Table IV: scenario {} ({}) has no augment rows at ratio {:g}.", sc.letter, sc.name,
                               ratio));
    }
    for (std::size_t i = 0; i < methods.size(); ++i) {
      const auto& method = methods[i];
      std::array<MeanSd, kNumMetrics> s;
      DisplayRow row;
      row.cells = {Cell::label(i == 0 ? fmt::format("CF added (recovery over reduced, ratio {:g})", ratio) : ""),
                   Cell::label(method_label(method))};
      for (std::size_t k = 0; k < kNumMetrics; ++k) {
        s[k] = summarise(relative_change_by_seed(augmented[method][k], reduced[k]));
        row.cells.push_back(Cell::number(s[k], 2, /*percent=*/true, /*sign_arrow=*/true));
      }
      const double n_added = summarise(added[method].first).mean, n_wanted = summarise(added[method].second).mean;
      // CF counts, rounded (means over seeds; table4.csv keeps them exact).
      row.cells.push_back(Cell::label(fmt::format("{:.0f} / {:.0f}", n_added, n_wanted)));
      t.rows.push_back(row);
      csv.rows.push_back(csv_line("augmented", sc.name, method, fraction, ratio, s, "percent_change", n_added, n_wanted));
    }
  }
  if (!any_scenario) {
    context.note(fmt::format("Table IV has the baseline only: no scarcity scenario has train_clf rows at fraction {:g}.",
                             fraction));
  }
  context.write("table4.md", to_markdown(t), "Table IV (markdown): NN under label scarcity and recovery with CFs added");
  context.write("table4.csv", to_csv(csv), "Table IV (CSV): mean and sd of every cell, with its unit");
  context.write("table4.tex", to_latex(t), "Table IV (LaTeX, booktabs)");
}

}  // namespace sensecf::report
