// Running one task: its kind (sweep/kind.h, src/sweep/kinds/) does the work.
#include "sensecf/sweep/tasks.h"

#include <filesystem>

#include "sensecf/data/source.h"
#include "sensecf/data/synth.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep {
namespace fs = std::filesystem;

void prepare_workdir(const SweepConfig& config, const std::string& workdir) {
  fs::create_directories(workdir + "/tasks");
  if (config.sweep.plan != "study" || data::parse_source(config.data.source) != data::Source::kSynth) return;
  const std::string path = workdir + "/cohort.csv";
  const auto cohort = data::make_synthetic_cohort(config.synth);
  data::write_csv(cohort, path + ".tmp");
  fs::rename(path + ".tmp", path);
}

store::TaskOutput run_task(const Task& task, const TaskEnv& env) { return task_kind(task.kind).run(task, env); }

}  // namespace sensecf::sweep
