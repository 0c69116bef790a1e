// The command set of the LLM-only build (SENSECF_LLM_ONLY, the GPU kit's
// build on machines without MPI or HDF5): `sensecf lm` and nothing else. With
// no MPI, an error only needs its exit code.
#include "commands.h"
#include "sensecf/core/error.h"

namespace sensecf::cli {

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = {
      {"lm", {cmd_lm, kLmSummary}},
  };
  return table;
}

void register_runtime_versions() {}

std::unique_ptr<Communicator> job_communicator() {
  const int ranks = launcher_rank_and_size().second;
  if (ranks > 1) {
    throw UsageError("this is the LLM-only build (no MPI): it cannot run on " + std::to_string(ranks) + " ranks",
                     "use the full build for data-parallel fine-tuning, or start one process");
  }
  return std::make_unique<SingleProcess>();
}
std::unique_ptr<Communicator> job_training_communicator(std::string& /*device*/) { return job_communicator(); }
void hand_over_command(const std::string& /*name*/, char** /*argv*/) {}
void hand_over_if(const std::function<bool()>& /*needs_torch*/) {}
int error_rank() { return 0; }
int end_after_error(int exit_code, bool /*every_rank*/) { return exit_code; }

}  // namespace sensecf::cli
