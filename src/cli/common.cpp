// Options shared by every sub-command and the common start-up sequence.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <utility>

#include "commands.h"
#include "sensecf/core/strings.h"

namespace sensecf::cli {

std::map<std::string, Command> command_table(const std::map<std::string, CommandFunction>& runs) {
  static const std::pair<const char*, const char*> kSummaries[] = {
      {"synth", "write a synthetic AI-READI-like cohort (12 features per 2-h window) as CSV"},
      {"ingest", "an AI-READI release (CGM, Garmin sleep/stress/steps) -> the feature table, one row per 2-h window"},
      {"train-clf", "train a classifier (nn|xgb|rf|svm) on a CSV, save it, print test metrics"},
      {"score", "compute ACC/PRE/REC/F1/AUC of a predictions CSV (columns y_true, score)"},
      {"info", "print versions, MPI ranks and GPU binding of this build"},
      {"explain", "counterfactuals (NICE, DiCE, CFNOW, an LLM) for test rows of a trained classifier, as CSV"},
      {"lm", kLmSummary},
      {"status", "where a sweep stands (done, running on which rank, failed, pending; ETA), while it runs"},
      {"export", "one table of a results file (metrics, tasks, counterfactuals) as CSV or JSON"},
      {"report", "Tables III/IV and Figs. 1, 6, 7, 8 (markdown, CSV, LaTeX, PNG/SVG) from a results file"},
      {"sweep", "run or resume a sweep (the paper's study or a variation) under MPI into an HDF5 file"},
      {"evaluate-cf", "CF metrics (validity, distance, sparsity, plausibility, ...) of a CF CSV"},
  };
  std::map<std::string, Command> table;
  for (const auto& [name, summary] : kSummaries) {
    const auto run = runs.find(name);
    table[name] = Command{run == runs.end() ? nullptr : run->second, summary};
  }
  return table;
}

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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int launcher_local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "SLURM_LOCALID"}) {
    if (const char* value = std::getenv(var)) return std::max(0, std::atoi(value));
  }
  return 0;
}

bool parse_and_start(Options& options, LogOptions& log, const std::vector<std::string>& args,
                     const std::function<bool()>& needs_torch) {
  if (!options.parse(args)) return false;
  if (needs_torch) hand_over_if(needs_torch);
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
