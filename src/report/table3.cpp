// Table III: counterfactual quality per method and factual class.
//
// Rows: /metrics/cf with purpose table3, scenario full and factual_class 0 or 1
// ("Class c": queries that f predicts as c, i.e. CFs aiming for 1 − c). Each
// metric is summarised over seeds; plausibility is printed in percent as in the
// paper. Marks are computed on the printed values (summary.h).
//
// CSV (table3.csv), one row per method:
//   method, n_seeds, then for class c in 0, 1 and each metric m:
//   class<c>_<m>_mean, class<c>_<m>_sd, class<c>_<m>_rank  (rank 1 best, 2 second, else empty)
// with m in validity, distance, sparsity, plausibility_pct.
#include <spdlog/fmt/fmt.h>

#include <array>
#include <map>
#include <set>

#include "sensecf/report/tables.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

struct Metric {
  const char* csv_name;
  const char* header;
  double store::CfMetricRow::*field;
  Better better;
  int decimals;
  double scale;  // 100: printed in percent
};

const Metric kMetrics[] = {
    {"validity", "Validity ↑", &store::CfMetricRow::validity, Better::kHigher, 2, 1.0},
    {"distance", "Distance ↓", &store::CfMetricRow::distance, Better::kLower, 2, 1.0},
    {"sparsity", "Sparsity ↓", &store::CfMetricRow::sparsity, Better::kLower, 2, 1.0},
    {"plausibility_pct", "Plausibility ↑", &store::CfMetricRow::plausibility, Better::kHigher, 1, 100.0},
};
constexpr std::size_t kNumMetrics = std::size(kMetrics);

std::string seeds_text(const std::set<std::size_t>& counts) {
  if (counts.empty()) return "0";
  if (counts.size() == 1) return std::to_string(*counts.begin());
  return fmt::format("{}–{}", *counts.begin(), *counts.rbegin());
}

}  // namespace

void write_table3(ReportContext& context) {
  // values[method][class][metric]: seed -> value (a later row of the same seed wins).
  using BySeed = std::map<long long, double>;
  std::map<std::string, std::array<std::array<BySeed, kNumMetrics>, 2>> values;
  std::map<std::string, std::set<long long>> seeds;
  for (const auto& r : context.results().cf) {
    if (r.purpose != vocab::kTable3 || r.scenario != vocab::kFull || (r.factual_class != 0 && r.factual_class != 1)) continue;
    auto& cls = values[r.method][static_cast<std::size_t>(r.factual_class)];
    for (std::size_t m = 0; m < kNumMetrics; ++m) cls[m][r.seed] = r.*kMetrics[m].field * kMetrics[m].scale;
    seeds[r.method].insert(r.seed);
  }
  if (values.empty()) {
    context.note("Table III skipped: no /metrics/cf rows with purpose table3, scenario full and factual class 0 or 1.");
    return;
  }
  std::vector<std::string> present;
  for (const auto& [method, v] : values) present.push_back(method);
  const auto methods = context.order(present);
  if (methods.empty()) {
    context.note("Table III skipped: none of the methods chosen with --methods has table3 rows.");
    return;
  }

  // summary[class][metric][method index]
  std::array<std::array<std::vector<MeanSd>, kNumMetrics>, 2> summary;
  std::array<std::array<std::vector<int>, kNumMetrics>, 2> marks;
  for (std::size_t c = 0; c < 2; ++c) {
    for (std::size_t m = 0; m < kNumMetrics; ++m) {
      std::vector<double> means;
      for (const auto& method : methods) {
        summary[c][m].push_back(summarise(values[method][c][m]));
        means.push_back(summary[c][m].back().mean);
      }
      marks[c][m] = best_two(means, kMetrics[m].better, kMetrics[m].decimals);
    }
  }

  std::set<std::size_t> seed_counts;
  for (const auto& method : methods) seed_counts.insert(seeds[method].size());
  DisplayTable t;
  t.caption = fmt::format(
      "Table III. Counterfactuals for test rows that f predicts as class 0 and as class 1 (full training set): "
      "mean ± sd over seeds (n = {}).",
      seeds_text(seed_counts));
  t.legend = "Bold: best, italic (LaTeX: underlined): second best per column. Plausibility in %. "
             "↑ higher is better, ↓ lower is better.";
  t.label = "tab:table3";
  t.groups = {{"", 1}, {"Class 0", kNumMetrics}, {"Class 1", kNumMetrics}};
  t.header = {"Method"};
  t.align = "l";
  for (std::size_t c = 0; c < 2; ++c) {
    for (const auto& m : kMetrics) {
      t.header.push_back(m.header);
      t.align += 'r';
    }
  }
  CsvTable csv;
  csv.header = {"method", "n_seeds"};
  for (std::size_t c = 0; c < 2; ++c) {
    for (const auto& m : kMetrics) {
      for (const char* what : {"mean", "sd", "rank"}) csv.header.push_back(fmt::format("class{}_{}_{}", c, m.csv_name, what));
    }
  }
  for (std::size_t i = 0; i < methods.size(); ++i) {
    DisplayRow row;
    row.cells.push_back(Cell::label(methods[i]));
    std::vector<std::string> line = {methods[i], std::to_string(seeds[methods[i]].size())};
    for (std::size_t c = 0; c < 2; ++c) {
      for (std::size_t m = 0; m < kNumMetrics; ++m) {
        const MeanSd& s = summary[c][m][i];
        Cell cell = Cell::number(s, kMetrics[m].decimals);
        cell.mark = marks[c][m][i];
        row.cells.push_back(cell);
        line.push_back(csv_number(s.mean));
        line.push_back(csv_number(s.sd));
        line.push_back(cell.mark ? std::to_string(cell.mark) : "");
      }
    }
    t.rows.push_back(std::move(row));
    csv.rows.push_back(std::move(line));
  }
  context.write("table3.md", to_markdown(t), "Table III (markdown): CF validity, distance, sparsity, plausibility per method and factual class");
  context.write("table3.csv", to_csv(csv), "Table III (CSV): mean, sd and best/second rank of every cell");
  context.write("table3.tex", to_latex(t), "Table III (LaTeX, booktabs)");
}

}  // namespace sensecf::report
