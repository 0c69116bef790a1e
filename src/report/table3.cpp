// Table III: counterfactual quality per method and factual class.
//
// Rows: /metrics/cf with purpose table3, scenario full and factual_class 0 or 1
// ("Class c": queries that f predicts as c, i.e. CFs aiming for 1 − c). Each
// metric is summarised over seeds; plausibility is printed in percent as in the
// paper. Validity is over ALL queries (a query without a CF counts as invalid),
// coverage the share of queries with a CF, parse rate the LLM answers that
// parsed ("—" for baselines: not applicable). Baselines first, LLM methods after,
// labelled "model (mode) +tags" (methods.h).
//
// Best / second marks (docs/report.md): validity and coverage among all methods
// shown; distance, sparsity and plausibility — averages over the returned CFs —
// only among the methods whose mean validity in that class is at least
// kEligibleShare × the best mean validity, so a method that answers a few
// queries well cannot win them. Parse rate is not marked.
//
// CSV (table3.csv), one row per method:
//   method, label, n_seeds, then for class c in 0, 1 and each metric m:
//   class<c>_<m>_mean, class<c>_<m>_sd, class<c>_<m>_rank  (rank 1 best, 2 second, else empty)
// with m in validity, coverage, parse_rate, validity_returned, distance,
// sparsity, plausibility_pct; then class<c>_ranked (1: the method takes part in
// the distance / sparsity / plausibility marks).
#include <spdlog/fmt/fmt.h>

#include <array>
#include <cmath>
#include <map>
#include <set>

#include "sensecf/core/vocabulary.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/tables.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

// Which methods the per-CF metrics are marked among: validity >= this × the best.
constexpr double kEligibleShare = 0.9;

enum class Marks { kAll, kEligible, kNone };

struct Metric {
  const char* csv_name;
  const char* header;  // nullptr: CSV only
  double store::CfMetricRow::*field;
  Better better;
  int decimals;
  double scale;  // 100: printed in percent
  Marks marks;
};

const Metric kMetrics[] = {
    {"validity", "Validity ↑", &store::CfMetricRow::validity, Better::kHigher, 2, 1.0, Marks::kAll},
    {"coverage", "Coverage ↑", &store::CfMetricRow::coverage, Better::kHigher, 2, 1.0, Marks::kAll},
    {"parse_rate", "Parse rate", &store::CfMetricRow::parse_rate, Better::kHigher, 2, 1.0, Marks::kNone},
    {"validity_returned", nullptr, &store::CfMetricRow::validity_returned, Better::kHigher, 2, 1.0, Marks::kNone},
    {"distance", "Distance ↓", &store::CfMetricRow::distance, Better::kLower, 2, 1.0, Marks::kEligible},
    {"sparsity", "Sparsity ↓", &store::CfMetricRow::sparsity, Better::kLower, 2, 1.0, Marks::kEligible},
    {"plausibility_pct", "Plausibility ↑", &store::CfMetricRow::plausibility, Better::kHigher, 1, 100.0,
     Marks::kEligible},
};
constexpr std::size_t kNumMetrics = std::size(kMetrics);
constexpr std::size_t kValidity = 0;
constexpr std::size_t kParseRate = 2;

std::size_t n_shown() {
  std::size_t n = 0;
  for (const auto& m : kMetrics) n += m.header ? 1 : 0;
  return n;
}

std::string seeds_text(const std::set<std::size_t>& counts) {
  if (counts.empty()) return "0";
  if (counts.size() == 1) return std::to_string(*counts.begin());
  return fmt::format("{}–{}", *counts.begin(), *counts.rbegin());
}

// eligible[i]: method i's mean validity is finite and >= kEligibleShare × the best.
std::vector<bool> eligible_methods(const std::vector<MeanSd>& validity) {
  double best = -1;
  for (const auto& v : validity) {
    if (v.n > 0) best = std::max(best, v.mean);
  }
  std::vector<bool> out;
  for (const auto& v : validity) out.push_back(v.n > 0 && best >= 0 && v.mean >= kEligibleShare * best);
  return out;
}

}  // namespace

void write_table3(ReportContext& context) {
  // values[method][class][metric]: seed -> value (a later row of the same seed wins).
  using BySeed = std::map<long long, double>;
  std::map<std::string, std::array<std::array<BySeed, kNumMetrics>, 2>> values;
  std::map<std::string, std::set<long long>> seeds;
  bool older_file = false;
  for (const auto& r : context.results().cf) {
    if (r.purpose != vocab::kTable3 || r.scenario != vocab::kFull || (r.factual_class != 0 && r.factual_class != 1)) continue;
    auto& cls = values[r.method][static_cast<std::size_t>(r.factual_class)];
    for (std::size_t m = 0; m < kNumMetrics; ++m) cls[m][r.seed] = r.*kMetrics[m].field * kMetrics[m].scale;
    seeds[r.method].insert(r.seed);
    older_file = older_file || (r.n_cfs > 0 && std::isnan(r.validity_returned));
  }
  if (values.empty()) {
    context.note("Table III skipped: no /metrics/cf rows with purpose table3, scenario full and factual class 0 or 1.");
    return;
  }
  if (older_file) {
    context.note("Table III: the results file predates the validity_returned column, so its `validity` is over the "
                 "returned CFs only (not over all queries) and its `coverage` is the share of queries with a valid CF; "
                 "rerun the generate tasks for today's definitions (docs/cf-metrics.md).");
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
  std::array<std::vector<bool>, 2> eligible;
  for (std::size_t c = 0; c < 2; ++c) {
    for (std::size_t m = 0; m < kNumMetrics; ++m) {
      for (const auto& method : methods) summary[c][m].push_back(summarise(values[method][c][m]));
    }
    eligible[c] = eligible_methods(summary[c][kValidity]);
    for (std::size_t m = 0; m < kNumMetrics; ++m) {
      std::vector<double> means;
      for (std::size_t i = 0; i < methods.size(); ++i) {
        const bool ranked = kMetrics[m].marks == Marks::kAll || (kMetrics[m].marks == Marks::kEligible && eligible[c][i]);
        means.push_back(ranked ? summary[c][m][i].mean : kNaN);
      }
      marks[c][m] = best_two(means, kMetrics[m].better, kMetrics[m].decimals);
    }
  }

  std::set<std::size_t> seed_counts;
  for (const auto& method : methods) seed_counts.insert(seeds[method].size());
  DisplayTable t;
  t.caption = fmt::format(
      "Table III. Counterfactuals for test rows that f predicts as class 0 and as class 1 (full training set): "
      "mean ± sd over seeds (n = {}). Validity is over all queries (a query without a CF counts as invalid); "
      "coverage: share of queries with a CF; parse rate: share of the LLM's answers that parsed.",
      seeds_text(seed_counts));
  t.legend = fmt::format(
      "Bold: best, italic (LaTeX: underlined): second best per column. Distance, sparsity and plausibility are "
      "marked only among methods whose validity is at least {:g}× the best validity of that class. "
      "Plausibility in %. Parse rate — : not applicable (not an LLM). ↑ higher is better, ↓ lower is better.",
      kEligibleShare);
  t.label = "tab:table3";
  t.groups = {{"", 1}, {"Class 0", n_shown()}, {"Class 1", n_shown()}};
  t.header = {"Method"};
  t.align = "l";
  for (std::size_t c = 0; c < 2; ++c) {
    for (const auto& m : kMetrics) {
      if (!m.header) continue;
      t.header.push_back(m.header);
      t.align += 'r';
    }
  }
  CsvTable csv;
  csv.header = {"method", "label", "n_seeds"};
  for (std::size_t c = 0; c < 2; ++c) {
    for (const auto& m : kMetrics) {
      for (const char* what : {"mean", "sd", "rank"}) csv.header.push_back(fmt::format("class{}_{}_{}", c, m.csv_name, what));
    }
  }
  for (std::size_t c = 0; c < 2; ++c) csv.header.push_back(fmt::format("class{}_ranked", c));
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const bool llm = is_llm_method(methods[i]);
    DisplayRow row;
    row.cells.push_back(Cell::label(method_label(methods[i])));
    std::vector<std::string> line = {methods[i], method_label(methods[i]), std::to_string(seeds[methods[i]].size())};
    for (std::size_t c = 0; c < 2; ++c) {
      for (std::size_t m = 0; m < kNumMetrics; ++m) {
        const MeanSd& s = summary[c][m][i];
        Cell cell = Cell::number(s, kMetrics[m].decimals);
        cell.mark = marks[c][m][i];
        if (m == kParseRate && !llm) cell = Cell::label("—");
        if (kMetrics[m].header) row.cells.push_back(cell);
        line.push_back(csv_number(s.mean));
        line.push_back(csv_number(s.sd));
        line.push_back(cell.mark ? std::to_string(cell.mark) : "");
      }
    }
    for (std::size_t c = 0; c < 2; ++c) line.push_back(eligible[c][i] ? "1" : "0");
    t.rows.push_back(std::move(row));
    csv.rows.push_back(std::move(line));
  }
  context.write("table3.md", to_markdown(t),
                "Table III (markdown): CF validity over all queries, coverage, parse rate, distance, sparsity, "
                "plausibility per method and factual class");
  context.write("table3.csv", to_csv(csv), "Table III (CSV): mean, sd and best/second rank of every cell");
  context.write("table3.tex", to_latex(t), "Table III (LaTeX, booktabs)");
}

}  // namespace sensecf::report
