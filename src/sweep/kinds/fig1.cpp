// fig1: one classifier (nn, xgb, rf, svm) trained on a share of the training
// patients and scored on the test rows: a point of the paper's Fig. 1.
#include "common.h"
#include "kinds.h"
#include "sensecf/clf/train.h"
#include "sensecf/data/split.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

class Fig1 final : public TaskKind {
 public:
  const char* name() const override { return vocab::kFig1; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    const auto& s = config.sweep;
    const std::vector<double> reductions = clf::fig1_reductions(s.fig1_reductions);
    for (const auto& split : study_splits(config)) {
      if (!split.full()) continue;
      for (const auto& model : s.fig1_models) {
        for (double r : reductions) {
          plan.add(name(), Fig1Params{split.seed, model, r}.to_json(), {{"rows", prepare_key(split)}},
                   model == "nn" ? 0.3 : 0.1);  // measured on the quickstart's ~1,000 rows
        }
      }
    }
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = Fig1Params::from(task);
    const SplitRows rows = read_split_rows(input_dir(task, env.workdir, "rows"), task);
    const data::Dataset d = dataset_for(rows, env);
    clf::ClfOptions o = nn_options(p.seed, env);
    o.model = p.model;
    const auto train = data::reduce_patients(d, rows.train, p.reduction, o.seed);
    const auto m = clf::fit_and_score(o, d, train, rows.test).metrics;
    store::TaskOutput out;
    auto row = clf_row(task, o.model, m, train.size());
    row.scenario = vocab::kFull;
    row.fraction = p.reduction;
    out.clf.push_back(row);
    return out;
  }
};

}  // namespace

const TaskKind& fig1_kind() {
  static const Fig1 kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
