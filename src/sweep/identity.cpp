// A sweep's identity (canonical config, hash) and the checks built on it. See
// identity.h.
#include "sensecf/sweep/identity.h"

#include <spdlog/fmt/fmt.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/sweep/journal.h"

namespace sensecf::sweep {

SweepIdentity sweep_identity(const Options& options, const std::string& data_fingerprint) {
  SweepIdentity id;
  id.config_text = options.effective_ini();
  const auto values = options.hashed_values();
  const auto source = values.find("data.source");
  const bool aireadi = source != values.end() && source->second == "aireadi";
  for (const auto& [key, value] : values) {
    // Keys of a data source the sweep does not read, and data.split at its
    // historical value, do not tell sweeps apart (so results files written
    // before those keys existed resume).
    if (!aireadi && starts_with(key, "ingest.")) continue;
    if (key == "data.split" && value == "random") continue;
    id.config_canonical += key + " = " + value + "\n";
  }
  if (!data_fingerprint.empty()) id.config_canonical += "data.fingerprint = " + data_fingerprint + "\n";
  id.config_hash = data_fingerprint.empty() ? options.config_hash() : fnv1a_hex(id.config_canonical);
  return id;
}

namespace {

bool growable(const std::string& key) {
  return std::find(std::begin(kGrowableKeys), std::end(kGrowableKeys), key) != std::end(kGrowableKeys);
}

// Does list `after` hold every element of `before`? An empty sweep.llm_seeds
// means every seed, so it only grows into itself.
bool grows(const std::string& key, const std::string& before, const std::string& after) {
  if (key == "sweep.llm_seeds" && before.empty()) return after.empty();
  const auto a = split_list(before, ','), b = split_list(after, ',');
  return std::all_of(a.begin(), a.end(), [&b](const std::string& x) {
    return std::find(b.begin(), b.end(), x) != b.end();
  });
}

}  // namespace

ConfigChange check_same_config(const std::string& stored_canonical, const SweepIdentity& current,
                               const std::string& results) {
  if (stored_canonical == current.config_canonical) return ConfigChange::kSame;
  const auto before = config_values(stored_canonical), after = config_values(current.config_canonical);
  std::vector<std::string> grown, refused;
  std::set<std::string> keys;
  for (const auto& [k, v] : before) keys.insert(k);
  for (const auto& [k, v] : after) keys.insert(k);
  for (const auto& k : keys) {
    const auto b = before.find(k), a = after.find(k);
    const std::string old_value = b == before.end() ? "(not set)" : b->second;
    const std::string new_value = a == after.end() ? "(not set)" : a->second;
    if (old_value == new_value) continue;
    const std::string line = fmt::format("{}: {} -> {}", k, old_value, new_value);
    if (growable(k) && b != before.end() && a != after.end() && grows(k, old_value, new_value)) {
      grown.push_back(line);
    } else {
      std::string why;
      if (growable(k)) why = " (a list may only grow: keep every old entry)";
      if (k == "data.fingerprint") why = " (the AI-READI files or ingest options changed since this study started)";
      refused.push_back(line + why);
    }
  }
  if (!refused.empty()) {
    std::string list;
    for (const auto& d : refused) list += "\n    " + d;
    throw UsageError("'" + results + "' holds a sweep with a different configuration; differing keys:" + list,
                     "rerun with the original configuration to resume, grow only the lists that add tasks (" +
                         join(std::vector<std::string>(std::begin(kGrowableKeys), std::end(kGrowableKeys)), ", ") +
                         "), or pass a new --results file");
  }
  std::string list;
  for (const auto& d : grown) list += "\n    " + d;
  spdlog::info("growing the study in '{}': the finished tasks stay, the new ones run:{}", results, list);
  return ConfigChange::kGrown;
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
