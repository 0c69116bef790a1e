// Options shared by every sub-command and the common start-up sequence.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "commands.h"
#include "sensecf/core/strings.h"

namespace sensecf::cli {

void declare_common_options(Options& options, LogOptions& log) {
  options.add("log.level", &log.level, "log level on stderr (-v: debug, -q: warn)").choices({"trace", "debug", "info", "warn", "error", "off"}).not_hashed();
  options.add("log.all_ranks", &log.all_ranks, "log at full level on every MPI rank, not only rank 0").not_hashed();
}

std::pair<int, int> launcher_rank_and_size() {
  const std::pair<const char*, const char*> vars[] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                                      {"PMIX_RANK", "PMIX_SIZE"},
                                                      {"PMI_RANK", "PMI_SIZE"},
                                                      {"SLURM_PROCID", "SLURM_NTASKS"}};
  for (const auto& [rank_var, size_var] : vars) {
    const char* rank = std::getenv(rank_var);
    const char* size = std::getenv(size_var);
    if (rank && size) return {std::atoi(rank), std::max(1, std::atoi(size))};
  }
  return {0, 1};
}

bool parse_and_start(Options& options, LogOptions& log, const std::vector<std::string>& args) {
  if (!options.parse(args)) return false;
  const auto [rank, size] = launcher_rank_and_size();
  init_logging(log, rank, size);
  // One line at info (what differs from the defaults, and where it came
  // from); the whole configuration, every value with its source, at debug.
  std::vector<std::string> from_cli;
  std::size_t n_from_files = 0;
  for (const auto& e : options.entries()) {
    if (e.source == OptionSource::kCommandLine) from_cli.push_back(e.key + "=" + e.get());
    if (e.source == OptionSource::kConfigFile) ++n_from_files;
  }
  const auto& files = options.config_files();
  spdlog::info("sensecf {}: config hash {}; {} key(s) from {}; command line: {} (the whole configuration: "
               "--log.level debug)",
               options.command(), options.config_hash(), n_from_files,
               files.empty() ? std::string("no config file") : join(files, ", "),
               from_cli.empty() ? std::string("nothing") : join(from_cli, " "));
  spdlog::debug("effective configuration of `sensecf {}`:\n{}", options.command(), options.effective_ini());
  return true;
}

}  // namespace sensecf::cli
