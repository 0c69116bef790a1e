// What makes two runs the same sweep, and the checks that refuse to mix them
// up: the canonical configuration (every hashed option as "key = value", what
// must match to resume a results file), its hash, and the launch check that
// catches N singleton processes started instead of one N-rank job. The
// journal stores the identity (journal.h); the runner compares it on resume.
#pragma once

#include <string>

namespace sensecf {
class Options;
}

namespace sensecf::sweep {

struct SweepIdentity {
  std::string config_text;       // the effective INI, for people (provenance)
  std::string config_canonical;  // every hashed option as "key = value\n", sorted by key
  std::string config_hash;       // Options::config_hash()
};

// The identity of the sweep that the parsed `options` describe. A data
// fingerprint (data.source = aireadi: ingest::release_fingerprint) joins the
// canonical config as `data.fingerprint`, so a release whose files changed
// is refused on resume like a changed option.
SweepIdentity sweep_identity(const Options& options, const std::string& data_fingerprint = {});

// Whether `results` may go on under the `current` configuration, given the
// one its journal holds (`stored_canonical`):
//   kSame   the same configuration: a resume
//   kGrown  only lists that add tasks grew, each a superset of what it was
//           (kGrowableKeys: more seeds, scenarios, methods, augment methods,
//           LLM models and seeds, Fig. 1 classifiers and reductions): the
//           finished tasks keep their keys, the new ones run
// Anything else (a classifier setting, the data, a shrunk list, sweep.ratios
// or sweep.queries, which change what finished generate tasks would hold)
// throws a UsageError naming every key that differs.
enum class ConfigChange { kSame, kGrown };
ConfigChange check_same_config(const std::string& stored_canonical, const SweepIdentity& current,
                               const std::string& results);
inline constexpr const char* kGrowableKeys[] = {"sweep.seeds",        "sweep.scenarios",   "sweep.methods",
                                                "sweep.augment_methods", "sweep.llm_models", "sweep.llm_seeds",
                                                "sweep.fig1_models",  "sweep.fig1_reductions"};

// Open MPI 5 + a wrong `srun --mpi` starts N singletons: each believes it is
// alone. Throws instead of running the sweep N times (`world_size`: this
// process's MPI_COMM_WORLD size; Slurm's view comes from the environment).
void check_launch(int world_size);

}  // namespace sensecf::sweep
