// Fig. 6: which features the CFs change, per method.
//
// CFs: /counterfactuals/<key> with purpose table3 (scenario full), found rows
// only (found = 1 and every value finite). For one task (method, seed):
//   share_j = #{found CFs c : |c_j − x_j| > 1e-9 · max(1, |x_j|)} / #{found CFs}
// (the sparsity rule of docs/cf-metrics.md); then mean ± sd over the method's
// seeds that found any CF. The paper draws a radar plot; a heat map (methods ×
// features, cell = mean share in %) reads better with many methods and is what
// gnuplot draws well. Every method with table3 CFs has a row, the LLM methods
// (labelled "model (mode) +tags") after the baselines.
//
// fig6.csv: method, feature, n_seeds, n_cfs (found CFs over all seeds), share_mean, share_sd
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "sensecf/core/strings.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/report/figures.h"
#include "sensecf/report/gnuplot.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

bool changed(double cf, double x) { return std::fabs(cf - x) > 1e-9 * std::max(1.0, std::fabs(x)); }

struct MethodCounts {
  std::map<long long, std::vector<double>> share_by_seed;  // seed -> [d] shares
  std::size_t n_cfs = 0;
};

}  // namespace

void write_fig6(ReportContext& context) {
  std::vector<const store::CfArrays*> tasks;
  for (const auto& c : context.results().counterfactuals) {
    if (c.purpose == vocab::kTable3 && c.scenario == vocab::kFull) tasks.push_back(&c);
  }
  if (tasks.empty()) {
    context.note("Fig. 6 skipped: no /counterfactuals with purpose table3 (scenario full).");
    return;
  }
  const std::vector<std::string> features = tasks.front()->features;
  const std::size_t d = features.size();
  std::map<std::string, MethodCounts> counts;
  std::vector<bool> ever_changed(d, false);
  for (const auto* c : tasks) {
    if (c->features != features) {
      context.note(fmt::format("Fig. 6: task {} ({}) left out: its features differ from task {}'s.", c->key, c->method,
                               tasks.front()->key));
      continue;
    }
    std::vector<double> n_changed(d, 0.0);
    std::size_t n_found = 0;
    for (std::size_t i = 0; i < c->n; ++i) {
      const double* x = &c->factual[i * d];
      const double* cf = &c->counterfactual[i * d];
      if (!c->found[i] || !std::all_of(cf, cf + d, [](double v) { return std::isfinite(v); })) continue;
      ++n_found;
      for (std::size_t j = 0; j < d; ++j) {
        if (changed(cf[j], x[j])) {
          n_changed[j] += 1;
          ever_changed[j] = true;
        }
      }
    }
    auto& mc = counts[c->method];
    mc.n_cfs += n_found;
    if (n_found == 0) continue;
    for (auto& v : n_changed) v /= static_cast<double>(n_found);
    mc.share_by_seed[c->seed] = n_changed;
  }

  // Which features to show.
  std::vector<std::size_t> shown;
  const auto& chosen = context.options().fig6_features;
  if (!chosen.empty()) {
    for (const auto& name : chosen) {
      const auto it = std::find(features.begin(), features.end(), name);
      if (it == features.end()) {
        const std::string best = closest_match(name, features);
        context.note(fmt::format("Fig. 6: feature '{}' (--fig6-features) is not in the CFs' features{}.", name,
                                 best.empty() ? "" : "; did you mean '" + best + "'?"));
        continue;
      }
      shown.push_back(static_cast<std::size_t>(it - features.begin()));
    }
  } else {
    const auto& immutable = context.immutable_features();
    std::vector<std::string> never;
    for (std::size_t j = 0; j < d; ++j) {
      if (std::find(immutable.begin(), immutable.end(), features[j]) != immutable.end()) continue;
      if (!ever_changed[j]) {
        never.push_back(features[j]);
        continue;
      }
      shown.push_back(j);
    }
    if (!never.empty()) {
      context.note("Fig. 6 leaves out features that no CF changes (immutable, or never used): " + join(never, ", ") +
                   ". Choose features with --fig6-features.");
    }
  }
  std::vector<std::string> present;
  for (const auto& [method, mc] : counts) {
    if (!mc.share_by_seed.empty()) present.push_back(method);
  }
  const auto methods = context.order(present);
  if (methods.empty() || shown.empty()) {
    context.note(methods.empty() ? "Fig. 6 skipped: no method found any table3 CF."
                                 : "Fig. 6 skipped: no feature to show.");
    return;
  }

  CsvTable csv;
  csv.header = {"method", "feature", "n_seeds", "n_cfs", "share_mean", "share_sd"};
  std::vector<DataRow> matrix;  // [methods, features] in %, read with `matrix` (boxxy cells: any grid size)
  for (const auto& method : methods) {
    const auto& mc = counts[method];
    DataRow row;
    for (std::size_t j : shown) {
      std::vector<double> v;
      for (const auto& [seed, shares] : mc.share_by_seed) v.push_back(shares[j]);
      const MeanSd s = summarise(v);
      csv.rows.push_back({method, features[j], std::to_string(s.n), std::to_string(mc.n_cfs), csv_number(s.mean),
                          csv_number(s.sd)});
      row.values.push_back(100 * s.mean);
    }
    matrix.push_back(row);
  }
  std::string xtics, ytics;
  for (std::size_t k = 0; k < shown.size(); ++k) xtics += fmt::format("{}{} {}", k ? ", " : "", gp_quote(features[shown[k]]), k);
  for (std::size_t i = 0; i < methods.size(); ++i) ytics += fmt::format("{}{} {}", i ? ", " : "", gp_quote(method_label(methods[i])), i);
  const std::string body = fmt::format(
      "set title 'Share of CFs that change each feature (%, mean over seeds)'\n"
      "set xtics ({}) rotate by 35 right\nset ytics ({})\nunset key\n"
      "set xrange [-0.5:{}]\nset yrange [-0.5:{}] reverse\n"
      "set cbrange [0:100]\nset cblabel 'CFs changing the feature (%)'\n"
      "set palette defined (0 'white', 50 '#6baed6', 100 '#08306b')\n"
      "set tics nomirror out\nset border 3\n"
      "plot $fig6 matrix using 1:2:(0.5):(0.5):3 with boxxy fs solid 1.0 noborder fc palette, \\\n"
      "     $fig6 matrix using 1:2:($3 < 55 ? sprintf('%.0f', $3) : '') with labels tc rgb 'black', \\\n"
      "     $fig6 matrix using 1:2:($3 >= 55 ? sprintf('%.0f', $3) : '') with labels tc rgb 'white'\n",
      xtics, ytics, shown.size() - 0.5, methods.size() - 0.5);
  const int width = std::max(520, 260 + 75 * static_cast<int>(shown.size()));
  const int height = std::max(320, 200 + 34 * static_cast<int>(methods.size()));
  context.write("fig6.csv", to_csv(csv), "Fig. 6 data: share of found table3 CFs changing each feature, per method");
  context.plot("fig6", figure_script("fig6", "feature changes per method (heat map)", datablock("fig6", matrix), body,
                                     width, height),
               "Fig. 6: how often each mutable feature is changed, per method (heat map, % of found CFs)");
}

}  // namespace sensecf::report
