// Fig. 8 as the paper's ablation: the CFs of one LLM before and after
// fine-tuning (zero-shot vs fine-tuned, same model and variant tags, same seed)
// for the same factual rows, in ONE PCA plane.
//
// Tasks: /counterfactuals with purpose table3, scenario full. The pair is the
// first fine-tuned LLM method in report order (methods without variant tags
// first) whose zero-shot sibling has CFs for the same seed (--fig8-seed, else
// the smallest seed both have). Factual rows: the queries both tasks share (by
// query_row, with equal factual values), in the zero-shot task's order; at most
// N = --fig8-points of them, evenly spaced (shared query ⌊i · n / N⌋). Points:
// those factual rows once, plus each method's found CFs for them; z-scores and
// the two components are fitted on that union (pca.h), so a factual row sits at
// the same place in both panels and the axes are shared.
//
// fig8.csv (as the per-method Fig. 8): method, seed, scenario, point, query
// (row of that method's arrays), query_row, class, pc1, pc2, explained_pc1,
// explained_pc2 — the factual rows appear once per panel, with equal coordinates.
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "sensecf/core/vocabulary.h"
#include "sensecf/report/figures.h"
#include "sensecf/report/gnuplot.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/pca.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

const char* kClassColour[2] = {"#1f77b4", "#d62728"};

struct Pair {
  const store::CfArrays* zero_shot = nullptr;
  const store::CfArrays* fine_tuned = nullptr;
};

bool all_finite(const double* v, std::size_t d) {
  return std::all_of(v, v + d, [](double x) { return std::isfinite(x); });
}

// The zero-shot / fine-tuned pair of Fig. 8, or a reason why there is none.
std::optional<Pair> find_pair(const ReportContext& context, std::string* why_not) {
  const long long want_seed = context.options().fig8_seed;
  // (model, variant) -> mode -> seed -> task
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::map<long long, const store::CfArrays*>>>
      by_model;
  std::vector<std::string> llm_methods;
  for (const auto& c : context.results().counterfactuals) {
    if (c.purpose != vocab::kTable3 || c.scenario != vocab::kFull || c.n == 0) continue;
    const auto m = parse_llm_method(c.method);
    if (!m) continue;
    by_model[{m->model, m->variant}][m->mode].emplace(c.seed, &c);
    llm_methods.push_back(c.method);
  }
  if (llm_methods.empty()) {
    *why_not = "the results have no LLM method with table3 CFs";
    return std::nullopt;
  }
  std::sort(llm_methods.begin(), llm_methods.end());
  llm_methods.erase(std::unique(llm_methods.begin(), llm_methods.end()), llm_methods.end());
  auto order = context.order(llm_methods);
  std::stable_partition(order.begin(), order.end(),
                        [](const std::string& m) { return parse_llm_method(m)->variant.empty(); });
  for (const auto& method : order) {
    const auto m = parse_llm_method(method);
    if (m->mode != "fine-tuned") continue;
    const auto& modes = by_model[{m->model, m->variant}];
    const auto zs = modes.find("zero-shot");
    if (zs == modes.end()) continue;
    const auto& ft = modes.at("fine-tuned");
    for (const auto& [seed, task] : zs->second) {  // ascending seeds
      if (want_seed >= 0 && seed != want_seed) continue;
      const auto it = ft.find(seed);
      if (it != ft.end()) return Pair{task, it->second};
    }
  }
  std::vector<std::string> labels;
  for (const auto& m : llm_methods) labels.push_back(method_label(m));
  std::string present;
  for (std::size_t i = 0; i < labels.size(); ++i) present += (i ? ", " : "") + labels[i];
  *why_not = fmt::format("no LLM model has both zero-shot and fine-tuned table3 CFs{} (LLM methods present: {})",
                         want_seed >= 0 ? fmt::format(" for seed {}", want_seed) : " for a common seed", present);
  return std::nullopt;
}

}  // namespace

bool write_fig8_ablation(ReportContext& context, std::string* why_not) {
  const auto pair = find_pair(context, why_not);
  if (!pair) return false;
  const store::CfArrays& zs = *pair->zero_shot;
  const store::CfArrays& ft = *pair->fine_tuned;
  if (zs.features != ft.features || zs.d != ft.d) {
    *why_not = fmt::format("{} and {} have different features", zs.method, ft.method);
    return false;
  }
  const std::size_t d = zs.d;
  // Shared factual rows: query_row in both, with the same values.
  std::map<long long, std::size_t> ft_index;
  for (std::size_t i = 0; i < ft.n; ++i) ft_index.emplace(ft.query_row[i], i);
  std::vector<std::pair<std::size_t, std::size_t>> shared;  // (zero-shot query, fine-tuned query)
  for (std::size_t i = 0; i < zs.n; ++i) {
    const auto it = ft_index.find(zs.query_row[i]);
    if (it == ft_index.end()) continue;
    if (!std::equal(zs.factual.begin() + static_cast<long>(i * d), zs.factual.begin() + static_cast<long>((i + 1) * d),
                    ft.factual.begin() + static_cast<long>(it->second * d))) {
      continue;
    }
    shared.emplace_back(i, it->second);
  }
  if (shared.empty()) {
    *why_not = fmt::format("{} and {} (seed {}) share no factual rows", zs.method, ft.method, zs.seed);
    return false;
  }
  const std::size_t limit =
      context.options().fig8_points > 0 ? static_cast<std::size_t>(context.options().fig8_points) : shared.size();
  std::vector<std::pair<std::size_t, std::size_t>> used;
  if (shared.size() <= limit) {
    used = shared;
  } else {
    for (std::size_t i = 0; i < limit; ++i) used.push_back(shared[i * shared.size() / limit]);
  }

  // Points: factual rows, then zero-shot CFs, then fine-tuned CFs. x: [points, d]
  struct Point {
    int set = 0;  // 0: factual, 1: zero-shot CF, 2: fine-tuned CF
    std::size_t zs_query = 0, ft_query = 0;
    long long cls = 0;
  };
  std::vector<Point> points;
  std::vector<double> x;
  for (const auto& [qz, qf] : used) {
    points.push_back({0, qz, qf, 1 - zs.target[qz]});
    x.insert(x.end(), zs.factual.begin() + static_cast<long>(qz * d), zs.factual.begin() + static_cast<long>((qz + 1) * d));
  }
  for (int set = 1; set <= 2; ++set) {
    const store::CfArrays& t = set == 1 ? zs : ft;
    for (const auto& [qz, qf] : used) {
      const std::size_t q = set == 1 ? qz : qf;
      const double* cf = &t.counterfactual[q * d];
      if (!t.found[q] || !all_finite(cf, d)) continue;
      points.push_back({set, qz, qf, t.target[q]});
      x.insert(x.end(), cf, cf + d);
    }
  }
  const Pca p = pca(standardise(x, points.size(), d), points.size(), d, 2);

  CsvTable csv;
  csv.header = {"method", "seed",  "scenario", "point",         "query",        "query_row",
                "class",  "pc1",   "pc2",      "explained_pc1", "explained_pc2"};
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double lo[2] = {kInf, kInf}, hi[2] = {-kInf, -kInf};
  std::string blocks, panels;
  for (int panel = 1; panel <= 2; ++panel) {
    const store::CfArrays& t = panel == 1 ? zs : ft;
    std::vector<DataRow> series[2][2];  // [is_cf][class]
    std::size_t n_cfs = 0;
    for (std::size_t i = 0; i < points.size(); ++i) {
      const Point& pt = points[i];
      if (pt.set != 0 && pt.set != panel) continue;
      const bool is_cf = pt.set != 0;
      n_cfs += is_cf ? 1 : 0;
      const std::size_t q = panel == 1 ? pt.zs_query : pt.ft_query;
      const double pc1 = p.coords[i * 2], pc2 = p.coords[i * 2 + 1];
      for (int k = 0; k < 2; ++k) {
        lo[k] = std::min(lo[k], p.coords[i * 2 + static_cast<std::size_t>(k)]);
        hi[k] = std::max(hi[k], p.coords[i * 2 + static_cast<std::size_t>(k)]);
      }
      csv.rows.push_back({t.method, std::to_string(t.seed), t.scenario, std::string(is_cf ? "counterfactual" : "factual"),
                          std::to_string(q), std::to_string(t.query_row[q]), std::to_string(pt.cls), csv_number(pc1),
                          csv_number(pc2), csv_number(p.explained_variance_ratio[0]),
                          csv_number(p.explained_variance_ratio[1])});
      if (pt.cls == 0 || pt.cls == 1) series[is_cf ? 1 : 0][pt.cls].push_back({{pc1, pc2}, ""});
    }
    std::string plots;
    for (int is_cf = 0; is_cf < 2; ++is_cf) {
      for (int cls = 0; cls < 2; ++cls) {
        if (series[is_cf][cls].empty()) continue;
        const std::string block = fmt::format("p{}_{}{}", panel, is_cf ? "cf" : "x", cls);
        blocks += datablock(block, series[is_cf][cls]);
        plots += fmt::format("{}${} using 1:2 with points pt {} ps {} lc rgb '{}' title {}",
                             plots.empty() ? "" : ", \\\n     ", block, is_cf ? 9 : 6, is_cf ? 0.8 : 0.7,
                             kClassColour[cls], gp_quote(fmt::format("{} class {}", is_cf ? "CF, target" : "factual,", cls)));
      }
    }
    panels += fmt::format("set title {}\nplot {}\n",
                          gp_quote(fmt::format("{}: {} CFs for {} factual rows", method_label(t.method), n_cfs,
                                               used.size())),
                          plots);
  }
  const double pad[2] = {0.05 * std::max(hi[0] - lo[0], 1e-9), 0.05 * std::max(hi[1] - lo[1], 1e-9)};
  const auto llm = parse_llm_method(ft.method);
  const std::string body = fmt::format(
      "set multiplot layout 1,2 title {}\n"
      "set grid\nset key below horizontal maxrows 2 font ',8'\nset bmargin 6\n"
      "set xrange [{}:{}]\nset yrange [{}:{}]\n"
      "set xlabel 'PC1 ({:.0f}%)'\nset ylabel 'PC2 ({:.0f}%)'\n"
      "{}unset multiplot\n",
      gp_quote(fmt::format("{}{}: zero-shot vs fine-tuned CFs of the same factual rows, one PCA (seed {})", llm->model,
                           llm->variant.empty() ? "" : " +" + llm->variant, zs.seed)),
      lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1], 100 * p.explained_variance_ratio[0],
      100 * p.explained_variance_ratio[1], panels);
  const std::string what = fmt::format("{} vs {} on {} shared table3 factual rows, one PCA fitted on the union",
                                       method_label(zs.method), method_label(ft.method), used.size());
  context.write("fig8.csv", to_csv(csv), "Fig. 8 (ablation) data: " + what + " (PCA coordinates of every point)");
  context.plot("fig8", figure_script("fig8", "ablation: zero-shot vs fine-tuned CFs in one PCA plane", blocks, body, 900, 470),
               "Fig. 8 (ablation): " + what);
  return true;
}

}  // namespace sensecf::report
