// The command set of the LLM-only build (SENSECF_LLM_ONLY, the GPU kit's
// build on machines without MPI or HDF5): `sensecf lm` and nothing else. With
// no MPI, an error only needs its exit code.
#include "commands.h"

namespace sensecf::cli {

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = {
      {"lm", {cmd_lm, kLmSummary}},
  };
  return table;
}

void register_runtime_versions() {}
int error_rank() { return 0; }
int end_after_error(int exit_code, bool /*every_rank*/) { return exit_code; }

}  // namespace sensecf::cli
