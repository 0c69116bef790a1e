// sensecf: entry point. Dispatches to a sub-command and turns exceptions into
// messages and exit codes (0 ok, 1 runtime error, 2 usage error).
#include <mpi.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <iostream>
#include <map>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/provenance.h"
#include "sensecf/core/strings.h"

namespace {

struct Command {
  int (*run)(const std::vector<std::string>&);
  const char* summary;
};

const std::map<std::string, Command>& commands() {
  using namespace sensecf::cli;
  static const std::map<std::string, Command> table = {
      {"synth", {cmd_synth, "write a synthetic AI-READI-like cohort (12 features per 2-h window) as CSV"}},
      {"train-clf", {cmd_train_clf, "train a classifier (nn|xgb|rf|svm) on a CSV, save it, print test metrics"}},
      {"score", {cmd_score, "compute ACC/PRE/REC/F1/AUC of a predictions CSV (columns y_true, score)"}},
      {"info", {cmd_info, "print versions, MPI ranks and GPU binding of this build"}},
      {"explain", {cmd_explain, "counterfactuals (NICE, DiCE, CFNOW) for test rows of a trained classifier, as CSV"}},
      {"lm", {cmd_lm, "LLM tools: tokenize, init-tiny, logits, generate (`sensecf lm --help`)"}},
      {"report", {cmd_report, "Tables III/IV and Figs. 1, 6, 7, 8 (markdown, CSV, LaTeX, PNG/SVG) from a results file"}},
      {"sweep", {cmd_sweep, "run or resume a sweep (the paper's study or a variation) under MPI into an HDF5 file"}},
      {"evaluate-cf", {cmd_evaluate_cf, "CF metrics (validity, distance, sparsity, plausibility, ...) of a CF CSV"}},
  };
  return table;
}

// After an error: if MPI is up, either finalize (an error every rank hits, such
// as a bad option) or abort the job (one rank's error), so that no rank hangs
// in a collective waiting for this one.
int end_mpi_after_error(int exit_code, bool every_rank) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return exit_code;
  int size = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (size > 1 && !every_rank) {
    std::cerr << "sensecf: aborting all " << size << " ranks after the error on rank " << rank << "\n";
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  MPI_Finalize();
  return exit_code;
}

void print_error(const std::string& command, const char* what, const std::string& hint) {
  int initialized = 0, finalized = 0, rank = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::cerr << "sensecf " << command << ": error" << (rank ? " on rank " + std::to_string(rank) : "") << ": "
            << what << "\n";
  if (!hint.empty()) std::cerr << "  hint: " << hint << "\n";
}

void print_usage() {
  std::cout << "sensecf — distributed experiment runner for LLM-generated counterfactual explanations\n\n"
               "Usage: sensecf <command> [options]      (sensecf <command> --help for its options)\n\n"
               "Commands:\n";
  for (const auto& [name, cmd] : commands()) {
    std::cout << "  " << name << std::string(14 - std::min<std::size_t>(13, name.size()), ' ')
              << cmd.summary << "\n";
  }
  std::cout << "\nOptions:\n  -h, --help     this help\n  --version      versions of sensecf and its libraries\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << sensecf::version_string() << "\n";
    return 0;
  }
  const std::string name = argv[1];
  const auto it = commands().find(name);
  if (it == commands().end()) {
    std::vector<std::string> names;
    for (const auto& [n, c] : commands()) names.push_back(n);
    const std::string best = sensecf::closest_match(name, names);
    std::cerr << "sensecf: unknown command '" << name << "'"
              << (best.empty() ? "" : "; did you mean '" + best + "'?") << "\n"
              << "Run `sensecf --help` for the list of commands.\n";
    return 2;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    return it->second.run(args);
  } catch (const sensecf::UsageError& e) {
    print_error(name, e.what(), e.hint());
    return end_mpi_after_error(2, /*every_rank=*/true);
  } catch (const sensecf::Error& e) {
    print_error(name, e.what(), e.hint());
    return end_mpi_after_error(1, /*every_rank=*/false);
  } catch (const std::exception& e) {
    print_error(name, e.what(), "this is unexpected; please report it with the command line");
    return end_mpi_after_error(1, /*every_rank=*/false);
  }
}
