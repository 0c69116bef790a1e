// The full command set of `sensecf` and what an error does under MPI: either
// finalize (an error every rank hits, such as a bad option) or abort the job
// (one rank's error), so that no rank hangs in a collective waiting for this one.
#include <mpi.h>

#include <iostream>

#include "commands.h"
#include "sensecf/core/provenance.h"
#include "sensecf/dist/mpi_communicator.h"
#include "sensecf/dist/mpi_env.h"
#include "sensecf/llmcf/generator.h"

namespace sensecf::cli {

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> table = {
      {"synth", {cmd_synth, "write a synthetic AI-READI-like cohort (12 features per 2-h window) as CSV"}},
      {"ingest", {cmd_ingest, "an AI-READI release (CGM, Garmin sleep/stress/steps) -> the feature table, one row per 2-h window"}},
      {"train-clf", {cmd_train_clf, "train a classifier (nn|xgb|rf|svm) on a CSV, save it, print test metrics"}},
      {"score", {cmd_score, "compute ACC/PRE/REC/F1/AUC of a predictions CSV (columns y_true, score)"}},
      {"info", {cmd_info, "print versions, MPI ranks and GPU binding of this build"}},
      {"explain", {cmd_explain, "counterfactuals (NICE, DiCE, CFNOW, an LLM) for test rows of a trained classifier, as CSV"}},
      {"lm", {cmd_lm, kLmSummary}},
      {"status", {cmd_status, "where a sweep stands (done, running on which rank, failed, pending; ETA), while it runs"}},
      {"export", {cmd_export, "one table of a results file (metrics, tasks, counterfactuals) as CSV or JSON"}},
      {"report", {cmd_report, "Tables III/IV and Figs. 1, 6, 7, 8 (markdown, CSV, LaTeX, PNG/SVG) from a results file"}},
      {"sweep", {cmd_sweep, "run or resume a sweep (the paper's study or a variation) under MPI into an HDF5 file"}},
      {"evaluate-cf", {cmd_evaluate_cf, "CF metrics (validity, distance, sparsity, plausibility, ...) of a CF CSV"}},
  };
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

namespace {
// MPI is initialised and not yet finalised.
bool mpi_up() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}
}  // namespace

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
    std::cerr << "sensecf: aborting all " << size << " ranks after the error on rank " << rank << "\n";
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  MPI_Finalize();
  return exit_code;
}

}  // namespace sensecf::cli
