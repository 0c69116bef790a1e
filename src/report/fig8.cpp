// Fig. 8: factual rows and their CFs in the plane of the first two principal
// components, one panel per method — used when the results have no zero-shot /
// fine-tuned pair for the ablation (fig8_ablation.cpp) or when asked for.
//
// CFs: /counterfactuals/<key> with purpose --fig8-purpose (table3: scenario full;
// augment: --fig8-scenario, else the first present) and seed --fig8-seed (else
// the smallest present), one task per method. Of a task's n queries at most
// --fig8-points are used, evenly spaced (query i·n/N for i < N). A panel's points
// are those factual rows plus their found CFs (found = 1, all values finite); the
// features are z-scored over the panel's points and projected on the panel's own
// first two principal components (pca.h). Factual points are coloured by f's
// prediction (1 − target, since every query asks to flip it), CFs by their target.
//
// fig8.csv: method, seed, scenario, point (factual|counterfactual), query (row of
// the task's arrays), query_row (row of the data set), class, pc1, pc2,
// explained_pc1, explained_pc2 (share of the panel's variance)
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "sensecf/report/figures.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/report/gnuplot.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/pca.h"
#include "sensecf/report/run_config.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

struct Point {
  bool is_cf = false;
  std::size_t query = 0;
  long long cls = 0;
};

const char* kClassColour[2] = {"#1f77b4", "#d62728"};

// The scenario Fig. 8 shows: the chosen one, else full for table3, else the
// first present in the paper's order.
std::string pick_scenario(const std::vector<const store::CfArrays*>& tasks, const ReportOptions& options) {
  if (!options.fig8_scenario.empty()) return options.fig8_scenario;
  std::set<std::string> present;
  for (const auto* t : tasks) present.insert(t->scenario);
  for (const char* s : {vocab::kFull, vocab::kPositive, vocab::kNegative, vocab::kDual}) {
    if (present.count(s)) return s;
  }
  return present.empty() ? "" : *present.begin();
}

}  // namespace

void write_fig8(ReportContext& context) {
  const auto& options = context.options();
  // The paper's Fig. 8 is the zero-shot vs fine-tuned ablation; the per-method
  // panels below are the fallback (and what --fig8-methods / augment ask for).
  std::string why_not;
  if (!options.fig8_methods.empty()) {
    why_not = "--fig8-methods asks for one panel per method";
  } else if (options.fig8_purpose != vocab::kTable3) {
    why_not = "--fig8-purpose " + options.fig8_purpose + " asks for one panel per method";
  } else if (write_fig8_ablation(context, &why_not)) {
    return;
  }
  const std::string ablation_note = "Fig. 8 shows one PCA panel per method, not the paper's zero-shot vs fine-tuned "
                                    "ablation: " + markdown_escape(why_not) + ".";
  std::vector<const store::CfArrays*> tasks;
  for (const auto& c : context.results().counterfactuals) {
    if (c.purpose == options.fig8_purpose) tasks.push_back(&c);
  }
  const std::string scenario = pick_scenario(tasks, options);
  tasks.erase(std::remove_if(tasks.begin(), tasks.end(), [&](const auto* t) { return t->scenario != scenario; }),
              tasks.end());
  if (tasks.empty()) {
    context.note(fmt::format("Fig. 8 skipped: no /counterfactuals with purpose {}{}.", options.fig8_purpose,
                             scenario.empty() ? "" : " and scenario " + scenario));
    return;
  }
  long long seed = options.fig8_seed;
  if (seed < 0) {
    seed = tasks.front()->seed;
    for (const auto* t : tasks) seed = std::min(seed, t->seed);
  }
  std::map<std::string, const store::CfArrays*> by_method;
  for (const auto* t : tasks) {
    if (t->seed == seed && !by_method.count(t->method)) by_method[t->method] = t;
  }
  std::vector<std::string> present;
  for (const auto& [method, t] : by_method) present.push_back(method);
  auto methods = options.fig8_methods.empty() ? context.order(present)
                                              : order_methods(present, {}, options.fig8_methods);
  methods.erase(std::remove_if(methods.begin(), methods.end(),
                               [&](const std::string& m) {
                                 if (by_method[m]->n > 0) return false;
                                 context.note(fmt::format("Fig. 8: method '{}' has no queries; left out.", m));
                                 return true;
                               }),
                methods.end());
  for (const auto& m : options.fig8_methods) {
    if (!by_method.count(m)) context.note(fmt::format("Fig. 8: method '{}' (--fig8-methods) has no CFs for seed {}.", m, seed));
  }
  if (methods.empty()) {
    context.note(fmt::format("Fig. 8 skipped: no chosen method has {} CFs for seed {}.", options.fig8_purpose, seed));
    return;
  }

  CsvTable csv;
  csv.header = {"method", "seed",  "scenario", "point",         "query",        "query_row",
                "class",  "pc1",   "pc2",      "explained_pc1", "explained_pc2"};
  std::string blocks, panels;
  for (std::size_t m = 0; m < methods.size(); ++m) {
    const store::CfArrays& t = *by_method[methods[m]];
    const std::size_t d = t.d;
    std::vector<std::size_t> queries;
    const std::size_t limit = options.fig8_points > 0 ? static_cast<std::size_t>(options.fig8_points) : t.n;
    if (t.n <= limit) {
      for (std::size_t i = 0; i < t.n; ++i) queries.push_back(i);
    } else {
      for (std::size_t i = 0; i < limit; ++i) queries.push_back(i * t.n / limit);
    }
    std::vector<Point> points;
    std::vector<double> x;  // [points, d]
    for (std::size_t q : queries) {
      points.push_back({false, q, 1 - t.target[q]});
      x.insert(x.end(), t.factual.begin() + static_cast<long>(q * d), t.factual.begin() + static_cast<long>((q + 1) * d));
    }
    for (std::size_t q : queries) {
      const double* cf = &t.counterfactual[q * d];
      if (!t.found[q] || !std::all_of(cf, cf + d, [](double v) { return std::isfinite(v); })) continue;
      points.push_back({true, q, t.target[q]});
      x.insert(x.end(), cf, cf + d);
    }
    const Pca p = pca(standardise(x, points.size(), d), points.size(), d, 2);
    std::vector<DataRow> series[2][2];  // [is_cf][class]
    for (std::size_t i = 0; i < points.size(); ++i) {
      const Point& pt = points[i];
      const double pc1 = p.coords[i * 2], pc2 = p.coords[i * 2 + 1];
      csv.rows.push_back({methods[m], std::to_string(t.seed), t.scenario, std::string(pt.is_cf ? "counterfactual" : "factual"),
                          std::to_string(pt.query), std::to_string(t.query_row[pt.query]), std::to_string(pt.cls),
                          csv_number(pc1), csv_number(pc2), csv_number(p.explained_variance_ratio[0]),
                          csv_number(p.explained_variance_ratio[1])});
      if (pt.cls == 0 || pt.cls == 1) series[pt.is_cf ? 1 : 0][pt.cls].push_back({{pc1, pc2}, ""});
    }
    std::string plots;
    for (int is_cf = 0; is_cf < 2; ++is_cf) {
      for (int cls = 0; cls < 2; ++cls) {
        if (series[is_cf][cls].empty()) continue;
        const std::string block = fmt::format("m{}_{}{}", m, is_cf ? "cf" : "x", cls);
        blocks += datablock(block, series[is_cf][cls]);
        plots += fmt::format("{}${} using 1:2 with points pt {} ps {} lc rgb '{}' title {}", plots.empty() ? "" : ", \\\n     ",
                             block, is_cf ? 9 : 6, is_cf ? 0.8 : 0.7, kClassColour[cls],
                             gp_quote(fmt::format("{} class {}", is_cf ? "CF, target" : "factual,", cls)));
      }
    }
    panels += fmt::format("set title {}\nset xlabel 'PC1 ({:.0f}%)'\nset ylabel 'PC2 ({:.0f}%)'\nplot {}\n",
                          gp_quote(method_label(methods[m])), 100 * p.explained_variance_ratio[0],
                          100 * p.explained_variance_ratio[1], plots);
  }
  const int cols = static_cast<int>(std::min<std::size_t>(3, methods.size()));
  const int rows = static_cast<int>((methods.size() + static_cast<std::size_t>(cols) - 1) / static_cast<std::size_t>(cols));
  const std::string body = fmt::format(
      "set multiplot layout {},{} title {}\n"
      "set grid\nset key below horizontal maxrows 2 font ',8'\nset bmargin 6\nset offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n"
      "{}unset multiplot\n",
      rows, cols,
      gp_quote(fmt::format("Factual rows (circles) and CFs (triangles), PCA per method; {} CFs, seed {}",
                           options.fig8_purpose, seed)),
      panels);
  context.note(ablation_note);
  context.write("fig8.csv", to_csv(csv), "Fig. 8 data: PCA coordinates of factual and CF points per method");
  context.plot("fig8", figure_script("fig8", "PCA of factual vs CF points per method", blocks, body,
                                     std::max(600, 440 * cols), 430 * rows),
               "Fig. 8: factual rows and CFs on the first two principal components, one panel per method");
}

}  // namespace sensecf::report
