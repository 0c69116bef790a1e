// The registry of task kinds, in plan order: a kind comes after every kind
// whose artefacts it reads. A new kind adds its accessor to kinds.h and one
// line here.
#include <spdlog/fmt/fmt.h>

#include "kinds.h"
#include "params.h"
#include "sensecf/core/error.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep {

const std::vector<const TaskKind*>& task_kinds() {
  static const std::vector<const TaskKind*> kinds = {
      &kinds::ingest_kind(),    // data.source = aireadi: windows of some participants
      &kinds::features_kind(),  // reads every ingest: the feature table
      &kinds::prepare_kind(),   // rows of one (seed, scenario) [, reads features]
      &kinds::train_clf_kind(), // reads rows
      &kinds::fig1_kind(),      // reads rows
      &kinds::pretrain_lm_kind(),  // reads rows (of the first LLM seed's full split)
      &kinds::finetune_kind(),  // reads rows [, base]
      &kinds::generate_kind(),  // reads rows, clf [, adapter, base]
      &kinds::augment_kind(),   // reads rows, clf, cfs
      &kinds::probe_kind(),     // the probe plan
  };
  return kinds;
}

const TaskKind& task_kind(const std::string& name) {
  std::string known;
  for (const auto* k : task_kinds()) {
    if (k->name() == name) return *k;
    known += (known.empty() ? "" : ", ") + std::string(k->name());
  }
  throw Error(fmt::format("unknown task kind '{}' (this sensecf knows {})", name, known),
              "the results file may come from a newer sensecf");
}

}  // namespace sensecf::sweep
