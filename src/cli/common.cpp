// Options shared by every sub-command and the common start-up sequence.
#include <spdlog/spdlog.h>

#include "commands.h"

namespace sensecf::cli {

void declare_common_options(Options& options, LogOptions& log) {
  options.add("log.level", &log.level, "log level on stderr").choices({"trace", "debug", "info", "warn", "error", "off"}).not_hashed();
  options.add("log.all_ranks", &log.all_ranks, "log at full level on every MPI rank, not only rank 0").not_hashed();
}

bool parse_and_start(Options& options, LogOptions& log, const std::vector<std::string>& args) {
  if (!options.parse(args)) return false;
  init_logging(log);
  spdlog::info("effective configuration of `sensecf {}`:\n{}", options.command(), options.effective_ini());
  return true;
}

}  // namespace sensecf::cli
