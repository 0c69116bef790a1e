// prepare: the patient split of one seed and the rows its scenario keeps and
// removes. Artefact: rows.json (task_io.h). Nothing for the results file.
#include <spdlog/spdlog.h>

#include "common.h"
#include "kinds.h"
#include "sensecf/data/split.h"
#include "sensecf/ingest/aireadi.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

class Prepare final : public TaskKind {
 public:
  const char* name() const override { return vocab::kPrepare; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    // data.source = aireadi: the table comes from the features task.
    std::vector<std::pair<std::string, std::string>> inputs;
    if (plan.contains(features_key())) inputs.emplace_back("features", features_key());
    for (const auto& split : study_splits(config)) plan.add(name(), split.to_json(), inputs, 0.1);
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = SplitParams::from(task);
    const auto& d = sweep_dataset(env);
    const auto seed = static_cast<std::uint64_t>(p.seed);
    const auto split =
        env.config->split == "recommended"
            ? data::assigned_split(d, ingest::read_recommended_splits(sweep_data_options(*env.config, env.workdir).path))
            : data::patient_split(d, env.config->data.test_fraction, seed);
    const auto sc = data::make_scenario(d, split.train, data::parse_scarcity(p.scenario), p.fraction, seed);
    const std::string dir = task_dir(env.workdir, task.key);
    write_split_rows(dir, {split.train, sc.kept, sc.removed, split.test});
    spdlog::debug("{}: {} train ({} kept, {} removed), {} test rows", task.label(), split.train.size(),
                  sc.kept.size(), sc.removed.size(), split.test.size());
    store::TaskOutput out;
    out.artifacts["rows"] = dir + "/rows.json";
    return out;
  }
};

}  // namespace

const TaskKind& prepare_kind() {
  static const Prepare kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
