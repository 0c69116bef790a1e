// `sensecf train-clf`: train one classifier on a CSV, save it, print its test
// metrics; or with --reduce, the paper's Fig. 1 curve (test F1 of all four
// classifiers as the training data shrinks).
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "commands.h"
#include "sensecf/clf/artefact.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/clf/metrics.h"
#include "sensecf/clf/train.h"
#include "sensecf/core/error.h"
#include "sensecf/core/provenance.h"
#include "sensecf/core/random.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/source.h"
#include "sensecf/data/split.h"

namespace sensecf::cli {
namespace {

struct TrainOptions {
  std::string out = "results/clf";
  bool json = false;
  std::vector<double> reduce;
  std::string scenario = vocab::kFull;  // label-scarcity scenario applied to the training rows
  double scenario_fraction = 0.5;
};

int fig1_curve(const TrainOptions& t, const clf::ClfOptions& base, const data::Dataset& d, const data::Split& split) {
  const std::vector<double> reductions = clf::fig1_reductions(t.reduce);
  const std::vector<std::string> kinds = {"nn", "xgb", "rf", "svm"};
  nlohmann::json rows = nlohmann::json::array();
  std::ostringstream table;
  table << "reduction";
  for (const auto& k : kinds) table << fmt::format(" {:>8}", "f1_" + k);
  table << "\n";
  for (double r : reductions) {
    const auto train = data::reduce_patients(d, split.train, r, base.seed);
    table << fmt::format("{:>9.2f}", r);
    for (const auto& k : kinds) {
      clf::ClfOptions o = base;
      o.model = k;
      const auto m = clf::fit_and_score(o, d, train, split.test).metrics;
      table << fmt::format(" {:>8.4f}", m.f1);
      rows.push_back({{"reduction", r}, {"model", k}, {"n_train", train.size()}, {"metrics", m.to_json()}});
    }
    table << "\n";
  }
  if (t.json) {
    std::cout << rows.dump() << "\n";
  } else {
    std::cout << table.str();
  }
  if (!t.out.empty()) {
    std::filesystem::create_directories(t.out);
    std::ofstream csv(t.out + "/fig1.csv");
    csv << "reduction,model,n_train,accuracy,precision,recall,f1,auc\n";
    for (const auto& row : rows) {
      const auto& m = row["metrics"];
      csv << fmt::format("{},{},{},{},{},{},{},{}\n", row["reduction"].get<double>(), row["model"].get<std::string>(),
                         row["n_train"].get<std::size_t>(), m["accuracy"].get<double>(), m["precision"].get<double>(),
                         m["recall"].get<double>(), m["f1"].get<double>(), m["auc"].get<double>());
    }
    spdlog::info("Fig. 1 data written to {}/fig1.csv", t.out);
  }
  return 0;
}

}  // namespace

int cmd_train_clf(const std::vector<std::string>& args) {
  data::DataOptions data_options;
  clf::ClfOptions clf_options;
  TrainOptions t;
  LogOptions log;
  Options options("train-clf",
                  "Train a classifier on a patient-level 80/20 split of a CSV, save it to --out and print its\n"
                  "test metrics (ACC, PRE, REC, F1, AUC). --scenario trains on a label-scarce training set\n"
                  "(Table IV's reduced-data rows). With --reduce, print the F1 of all four classifiers as the\n"
                  "training data is reduced (the paper's Fig. 1).");
  data::declare_options(options, data_options);
  clf::declare_options(options, clf_options);
  options.add("train.out", &t.out, "output directory (the model; with --reduce, fig1.csv)", "out");
  options.add("train.json", &t.json, "print the metrics as JSON", "json").not_hashed();
  options.add("train.reduce", &t.reduce,
              "training-data reductions for the Fig. 1 curve, e.g. 0.1,0.2,...,0.7 (trains nn, xgb, rf, svm)",
              "reduce");
  options.add("scenario.kind", &t.scenario,
              "label scarcity applied to the training rows: full, positive (class 1 reduced), negative "
              "(class 0 reduced), dual (both)",
              "scenario")
      .choices({vocab::kFull, vocab::kPositive, vocab::kNegative, vocab::kDual});
  options.add("scenario.fraction", &t.scenario_fraction, "share of the reduced class(es) removed",
              "scenario-fraction");
  options.add_check([&t] {
    if (!(t.scenario_fraction >= 0 && t.scenario_fraction < 1))
      throw UsageError(fmt::format("scenario.fraction must be in [0, 1), got {}", t.scenario_fraction));
    if (!t.reduce.empty() && t.scenario != vocab::kFull)
      throw UsageError("--reduce (Fig. 1) and --scenario cannot be combined", "run them separately");
    for (double r : t.reduce)
      if (!(r >= 0 && r < 1)) throw UsageError(fmt::format("train.reduce values must be in [0, 1), got {}", r));
  });
  declare_common_options(options, log);
  // --reduce trains all four kinds, nn among them.
  if (!parse_and_start(options, log, args,
                       [&] { return clf::kind_needs_torch(clf_options.model) || !t.reduce.empty(); }))
    return 0;

  data::Dataset d = data::load_dataset(data_options, "train-clf");
  const auto split = data::patient_split(d, data_options.test_fraction, clf_options.seed);
  d.schema.learn_bounds(d.x, split.train);
  spdlog::info("{}: {} rows ({} positive), {} features; split {} train / {} test rows", d.source, d.size(),
               d.count_label(1), d.schema.size(), split.train.size(), split.test.size());

  if (!t.reduce.empty()) return fig1_curve(t, clf_options, d, split);

  const auto scenario = data::make_scenario(d, split.train, data::parse_scarcity(t.scenario),
                                            t.scenario_fraction, clf_options.seed);
  if (scenario.kind != data::Scarcity::kFull) {
    spdlog::info("scenario {}: removed {} class-0 and {} class-1 training rows, {} remain", t.scenario,
                 scenario.removed_of(0, d), scenario.removed_of(1, d), scenario.kept.size());
  }
  const auto start = std::chrono::steady_clock::now();
  auto [model, m] = clf::fit_and_score(clf_options, d, scenario.kept, split.test);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  clf::TrainingSetup setup;
  setup.data_settings = clf::data_settings(data_options);
  setup.split_seed = clf_options.seed;
  setup.test_fraction = data_options.test_fraction;
  setup.scenario = t.scenario;
  setup.scenario_fraction = scenario.fraction;
  setup.removed_class0 = scenario.removed_of(0, d);
  setup.removed_class1 = scenario.removed_of(1, d);
  setup.train_rows = scenario.kept.size();
  setup.test_rows = split.test.size();
  setup.data_source = d.source;
  setup.data_identity = clf::data_identity(d);
  clf::save_trained_model(*model, d.schema, setup,
                          {{"provenance", make_provenance(options).to_json()},
                           {"test_metrics", m.to_json()},
                           {"train_seconds", seconds}},
                          t.out);
  spdlog::info("{} trained in {:.2f} s, saved to {}", model->kind(), seconds, t.out);
  if (t.json) {
    nlohmann::json j = m.to_json();
    j["model"] = model->kind();
    j["train_seconds"] = seconds;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "model=" << model->kind() << " " << m.line() << "\n";
  }
  return 0;
}

}  // namespace sensecf::cli
