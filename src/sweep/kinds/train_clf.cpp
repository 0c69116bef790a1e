// train_clf: the black-box NN f_s of one (seed, scenario), trained on the rows
// the scenario keeps and scored on the test rows. Artefact: clf/ (the
// trained-model artefact, clf/artefact.h — `sensecf explain --clf` reads it).
#include <filesystem>

#include "common.h"
#include "kinds.h"
#include "sensecf/clf/artefact.h"
#include "sensecf/clf/train.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

class TrainClf final : public TaskKind {
 public:
  const char* name() const override { return vocab::kTrainClf; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    for (const auto& split : study_splits(config))
      plan.add(name(), split.to_json(), {{"rows", prepare_key(split)}}, 0.3);  // measured: ~0.2 s
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = SplitParams::from(task);
    const SplitRows rows = read_split_rows(input_dir(task, env.workdir, "rows"), task);
    const data::Dataset d = dataset_for(rows, env);
    const auto [model, m] = clf::fit_and_score(nn_options(p.seed, env), d, rows.kept, rows.test);

    clf::TrainingSetup setup;
    setup.data_settings = clf::data_settings(sweep_data_options(*env.config, env.workdir));
    setup.split_seed = static_cast<std::uint64_t>(p.seed);
    setup.test_fraction = env.config->data.test_fraction;
    setup.scenario = p.scenario;
    setup.scenario_fraction = p.fraction;
    setup.removed_class0 = d.count_label(0, rows.removed);
    setup.removed_class1 = d.count_label(1, rows.removed);
    setup.train_rows = rows.kept.size();
    setup.test_rows = rows.test.size();
    setup.data_source = d.source;
    setup.data_identity = clf::data_identity(d);
    const std::string dir = task_dir(env.workdir, task.key) + "/clf";
    clf::save_trained_model(*model, d.schema, setup, {{"task", task.label()}, {"test_metrics", m.to_json()}}, dir);

    store::TaskOutput out;
    out.clf.push_back(clf_row(task, "nn", m, rows.kept.size()));
    add_curve(task, *model, out);
    out.artifacts["clf"] = dir;
    return out;
  }
};

}  // namespace

const TaskKind& train_clf_kind() {
  static const TrainClf kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
