// A sweep's identity (canonical config, hash) and the checks built on it. See
// identity.h.
#include "sensecf/sweep/identity.h"

#include <spdlog/fmt/fmt.h>

#include <cstdlib>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/sweep/journal.h"

namespace sensecf::sweep {

SweepIdentity sweep_identity(const Options& options) {
  SweepIdentity id;
  id.config_text = options.effective_ini();
  for (const auto& [key, value] : options.hashed_values()) id.config_canonical += key + " = " + value + "\n";
  id.config_hash = options.config_hash();
  return id;
}

void check_same_config(const std::string& stored_canonical, const SweepIdentity& current, const std::string& results) {
  if (stored_canonical == current.config_canonical) return;
  std::string list;
  for (const auto& d : config_differences(stored_canonical, current.config_canonical)) list += "\n    " + d;
  throw UsageError("'" + results + "' holds a sweep with a different configuration; differing keys:" + list,
                   "rerun with the original configuration to resume, or pass a new --results file");
}

void check_launch(int world_size) {
  const char* ntasks = std::getenv("SLURM_NTASKS");
  const char* step = std::getenv("SLURM_STEP_ID");
  const char* procid = std::getenv("SLURM_PROCID");
  // Only a direct srun launch that produced singletons: under mpirun (also
  // inside an allocation) the ranks see the full world size.
  if (world_size != 1 || !ntasks || !step || !procid || std::atoi(ntasks) <= 1) return;
  throw Error(fmt::format("this process sees {} MPI rank(s) but Slurm started {} tasks", world_size, ntasks),
              "launch with `srun --mpi=pmix` (Open MPI is built against PMIx) or with mpirun inside the allocation");
}

}  // namespace sensecf::sweep
