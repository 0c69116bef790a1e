// The full command set (sensecf-full) and what an error does under MPI: either
// finalize (an error every rank hits, such as a bad option) or abort the job
// (one rank's error), so that no rank hangs in a collective waiting for this one.
#include <mpi.h>

#include <iostream>

#include "commands.h"
#include "sensecf/core/provenance.h"
#include "sensecf/dist/mpi_communicator.h"
#include "sensecf/dist/nccl_communicator.h"
#include "sensecf/dist/mpi_env.h"
#include "sensecf/llmcf/generator.h"

namespace sensecf::cli {

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = [] {
    std::map<std::string, CommandFunction> runs = torch_free_commands();
    runs.insert({{"info", cmd_info}, {"lm", cmd_lm}, {"sweep", cmd_sweep}});
    return command_table(runs);
  }();
  return table;
}

void register_runtime_versions() {
  add_runtime_version(dist::mpi_library_version());
  llmcf::register_methods();  // the llm:<model>:<mode> CF methods (this build has the llmcf module)
}

std::unique_ptr<Communicator> job_communicator() {
  if (launcher_rank_and_size().second > 1) return dist::world_communicator();
  return std::make_unique<SingleProcess>();
}

std::unique_ptr<Communicator> job_training_communicator(std::string& device) {
  auto bound = dist::training_communicator(job_communicator(), device, launcher_local_rank());
  device = bound.device;
  return std::move(bound.comm);
}

namespace {
// MPI is initialised and not yet finalised.
bool mpi_up() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}
}  // namespace

// sensecf-full runs every command itself.
void hand_over_command(const std::string& /*name*/, char** /*argv*/) {}
void hand_over_if(const std::function<bool()>& /*needs_torch*/) {}

int error_rank() {
  int rank = 0;
  if (mpi_up()) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int end_after_error(int exit_code, bool every_rank) {
  if (!mpi_up()) return exit_code;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int rank = error_rank();
  if (size > 1 && !every_rank) {
    std::cerr << "sensecf: aborting all " + std::to_string(size) + " ranks after the error on rank " +
                     std::to_string(rank) + "\n"
              << std::flush;
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  MPI_Finalize();
  return exit_code;
}

}  // namespace sensecf::cli
