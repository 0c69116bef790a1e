// Fig. 1 (F1 vs training-data reduction per classifier) and Fig. 7 (F1 vs
// augmentation ratio per scarcity scenario): the two line charts of test F1.
//
// fig1.csv: model, reduction, n_seeds, f1_mean, f1_sd   (one row per model and reduction)
// fig7.csv: scenario, kind (augment|reduced|full), method, ratio, n_seeds, f1_mean, f1_sd
//           (reduced / full: the reference lines, ratio empty)
// Error bars are the sd over seeds; with one seed there is no bar.
// Fig. 7's line styles: baselines solid, one colour each; LLM methods one colour
// per model (and variant tags), the mode as the dash type — fine-tuned solid,
// zero-shot dashed, few-shot dotted (methods.h); the reference lines are
// dash-dot (reduced data, black) and dash-dot-dot (full data, grey).
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "sensecf/report/figures.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/report/gnuplot.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

using BySeed = std::map<long long, double>;

std::string model_title(const std::string& model) {
  static const std::map<std::string, std::string> kTitles = {
      {"nn", "NN"}, {"xgb", "XGBoost"}, {"rf", "Random forest"}, {"svm", "SVM"}};
  const auto it = kTitles.find(model);
  return it != kTitles.end() ? it->second : model;
}

// Known classifiers in the paper's order, then any others by name.
std::vector<std::string> order_models(const std::set<std::string>& present) {
  std::vector<std::string> out;
  for (const char* m : {"nn", "xgb", "rf", "svm"}) {
    if (present.count(m)) out.push_back(m);
  }
  for (const auto& m : present) {
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  return out;
}

// x, mean, sd (0 when undefined, so that gnuplot draws the point without a bar).
DataRow point(double x, const MeanSd& s) { return {{x, s.mean, std::isfinite(s.sd) ? s.sd : 0.0}, ""}; }

const char* kScenarioTitles[][2] = {
    {vocab::kPositive, "A: positive-class scarcity"},
    {vocab::kNegative, "B: negative-class scarcity"},
    {vocab::kDual, "C: dual-class scarcity"},
};

}  // namespace

void write_fig1(ReportContext& context) {
  std::map<std::string, std::map<double, BySeed>> f1;  // model -> reduction -> seed -> F1
  for (const auto& r : context.results().clf) {
    if (r.kind == vocab::kFig1) f1[r.model.empty() ? "nn" : r.model][r.fraction][r.seed] = r.f1;
  }
  if (f1.empty()) {
    context.note("Fig. 1 skipped: no /metrics/clf rows of kind fig1.");
    return;
  }
  std::set<std::string> present;
  for (const auto& [model, v] : f1) present.insert(model);
  const auto models = order_models(present);

  CsvTable csv;
  csv.header = {"model", "reduction", "n_seeds", "f1_mean", "f1_sd"};
  std::string blocks, plots;
  for (std::size_t i = 0; i < models.size(); ++i) {
    std::vector<DataRow> rows;
    for (const auto& [reduction, by_seed] : f1[models[i]]) {
      const MeanSd s = summarise(by_seed);
      csv.rows.push_back({models[i], csv_number(reduction), std::to_string(s.n), csv_number(s.mean), csv_number(s.sd)});
      if (s.n > 0) rows.push_back(point(100 * reduction, s));
    }
    const std::string block = fmt::format("model{}", i);
    blocks += datablock(block, rows);
    plots += fmt::format("{}${} using 1:2:3 with yerrorlines lt {} pt {} lw 2 title {}", plots.empty() ? "" : ", \\\n     ",
                         block, i + 1, 5 + 2 * static_cast<int>(i), gp_quote(model_title(models[i])));
  }
  const std::string body =
      "set title 'Test F1 as the training data is reduced (mean ± sd over seeds)'\n"
      "set xlabel 'Training-data reduction (%)'\nset ylabel 'F1'\n"
      "set grid\nset key bottom left box opaque\nset offsets graph 0.03, graph 0.03, graph 0.1, graph 0.1\n"
      "plot " + plots + "\n";
  context.write("fig1.csv", to_csv(csv), "Fig. 1 data: test F1 per classifier and training-data reduction");
  context.plot("fig1", figure_script("fig1", "test F1 vs training-data reduction per classifier", blocks, body, 800, 520),
               "Fig. 1: test F1 vs training-data reduction per classifier (error bars: sd over seeds)");
}

void write_fig7(ReportContext& context) {
  const double fraction = context.fraction();
  BySeed full;
  std::map<std::string, BySeed> reduced;                                  // scenario -> seed -> F1
  std::map<std::string, std::map<std::string, std::map<double, BySeed>>> augmented;  // scenario -> method -> ratio -> ...
  for (const auto& r : context.results().clf) {
    if (r.kind == vocab::kTrainClf && r.scenario == vocab::kFull) full[r.seed] = r.f1;
    if (r.kind == vocab::kTrainClf && r.scenario != vocab::kFull && same_setting(r.fraction, fraction)) reduced[r.scenario][r.seed] = r.f1;
    if (r.kind == vocab::kAugment && same_setting(r.fraction, fraction)) augmented[r.scenario][r.method][r.ratio][r.seed] = r.f1;
  }
  if (augmented.empty()) {
    context.note(fmt::format("Fig. 7 skipped: no /metrics/clf rows of kind augment at fraction {:g}.", fraction));
    return;
  }
  // One line style per method, the same in every panel.
  std::vector<std::string> all_methods;
  {
    std::set<std::string> present;
    for (const auto& [scenario, by_method] : augmented)
      for (const auto& [method, v] : by_method) present.insert(method);
    all_methods = context.order({present.begin(), present.end()});
  }
  if (all_methods.empty()) {
    context.note("Fig. 7 skipped: none of the methods chosen with --methods has augment rows.");
    return;
  }
  // Colour per baseline, and per LLM model (+ variant tags) so its modes line up.
  std::vector<int> colour(all_methods.size());
  {
    std::map<std::string, int> by_family;
    for (std::size_t i = 0; i < all_methods.size(); ++i) {
      const auto llm = parse_llm_method(all_methods[i]);
      const std::string family = llm ? "llm:" + llm->model + "+" + llm->variant : all_methods[i];
      colour[i] = by_family.emplace(family, static_cast<int>(by_family.size()) + 1).first->second;
    }
  }
  CsvTable csv;
  csv.header = {"scenario", "kind", "method", "ratio", "n_seeds", "f1_mean", "f1_sd"};
  const MeanSd full_s = summarise(full);
  std::string blocks, panels;
  std::size_t n_panels = 0;
  std::vector<std::string> key_lines(all_methods.size());  // the key panel's entry of each method drawn
  std::vector<bool> in_key(all_methods.size(), false);
  bool any_reduced = false, any_full = false;
  for (const auto& [scenario, title] : kScenarioTitles) {
    const auto it = augmented.find(scenario);
    if (it == augmented.end()) continue;
    std::string plots;
    for (std::size_t i = 0; i < all_methods.size(); ++i) {
      const auto m = it->second.find(all_methods[i]);
      if (m == it->second.end()) continue;
      std::vector<DataRow> rows;
      for (const auto& [ratio, by_seed] : m->second) {
        const MeanSd s = summarise(by_seed);
        csv.rows.push_back({scenario, vocab::kForAugment, all_methods[i], csv_number(ratio), std::to_string(s.n),
                            csv_number(s.mean), csv_number(s.sd)});
        if (s.n > 0) rows.push_back(point(100 * ratio, s));
      }
      const std::string block = fmt::format("{}_{}", scenario, i);
      blocks += datablock(block, rows);
      const std::string style = fmt::format("with yerrorlines lt {} dt {} pt {} lw 2", colour[i],
                                            dash_type(all_methods[i]), 5 + 2 * static_cast<int>(i % 4));
      plots += fmt::format("{}${} using 1:2:3 {} title {}", plots.empty() ? "" : ", \\\n     ", block, style,
                           gp_quote(method_label(all_methods[i])));
      if (!in_key[i]) {  // the key's sample: the line with its point (yerrorlines would show the point only)
        key_lines[i] = fmt::format("NaN with linespoints lt {} dt {} pt {} lw 2 title {}", colour[i],
                                   dash_type(all_methods[i]), 5 + 2 * static_cast<int>(i % 4),
                                   gp_quote(method_label(all_methods[i])));
      }
      in_key[i] = true;
    }
    if (plots.empty()) continue;  // none of the chosen methods in this scenario
    ++n_panels;
    const MeanSd reduced_s = summarise(reduced[scenario]);
    if (reduced_s.n > 0) {
      csv.rows.push_back({scenario, "reduced", "", "", std::to_string(reduced_s.n), csv_number(reduced_s.mean),
                          csv_number(reduced_s.sd)});
      plots += fmt::format(", \\\n     {} with lines dt 4 lw 2 lc rgb 'black' title 'reduced data'", reduced_s.mean);
      any_reduced = true;
    } else {
      context.note(fmt::format("Fig. 7: panel {} has no reduced-data line (no train_clf rows at fraction {:g}).",
                               scenario, fraction));
    }
    if (full_s.n > 0) {
      csv.rows.push_back({scenario, vocab::kFull, "", "", std::to_string(full_s.n), csv_number(full_s.mean),
                          csv_number(full_s.sd)});
      plots += fmt::format(", \\\n     {} with lines dt 5 lw 2 lc rgb 'gray40' title 'full data'", full_s.mean);
      any_full = true;
    }
    panels += "set title " + gp_quote(title) + "\nplot " + plots + "\n";
  }
  if (n_panels == 0) {
    context.note("Fig. 7 skipped: augment rows name no scenario among positive, negative, dual.");
    return;
  }
  // One key for every panel, in a panel of its own beside them: each method
  // once (a NaN plot carries its style), then the reference lines.
  std::string key;
  for (const auto& line : key_lines)
    if (!line.empty()) key += (key.empty() ? "" : ", \\\n     ") + line;
  if (any_reduced) key += ", \\\n     NaN with lines dt 4 lw 2 lc rgb 'black' title 'reduced data'";
  if (any_full) key += ", \\\n     NaN with lines dt 5 lw 2 lc rgb 'gray40' title 'full data'";
  const std::string body = fmt::format(
      "set multiplot layout 1,{} title 'Test F1 vs augmentation ratio ({:g}% removed; mean ± sd over seeds)'\n"
      "set xlabel 'Augmentation ratio (% of the removed rows)'\nset ylabel 'F1'\n"
      "set grid\nunset key\n"
      "set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.1\nset xrange [0:100]\nset xtics 0,20,100\n"
      "{}"
      "# the key, beside the panels\n"
      "unset title\nunset xlabel\nunset ylabel\nunset grid\nunset tics\nunset border\nset offsets 0, 0, 0, 0\n"
      "set xrange [0:1]\nset yrange [0:1]\nset key center center vertical font ',11' samplen 3 spacing 1.3\n"
      "plot {}\nunset multiplot\n",
      n_panels + 1, 100 * fraction, panels, key);
  context.write("fig7.csv", to_csv(csv), "Fig. 7 data: F1 per scenario, method and augmentation ratio, with the reference lines");
  context.plot("fig7",
               figure_script("fig7", "test F1 vs augmentation ratio per scarcity scenario", blocks, body,
                             480 * static_cast<int>(n_panels + 1), 460),
               "Fig. 7: F1 vs augmentation ratio per scenario (baselines and fine-tuned LLMs solid, zero-shot dashed, "
               "few-shot dotted; dash-dot: reduced data, dash-dot-dot: full data)");
}

}  // namespace sensecf::report
