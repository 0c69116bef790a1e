// `sensecf sweep`: run (or resume) a sweep described by an INI config on every
// rank of an MPI job; rank 0 coordinates and writes the results file.
#include <filesystem>

#include "commands.h"
#include "sensecf/dist/mpi_env.h"
#include "sensecf/ingest/aireadi.h"
#include "sensecf/store/h5file.h"
#include "sensecf/sweep/embedded_config.h"
#include "sensecf/sweep/identity.h"
#include "sensecf/sweep/runner.h"
#include "sensecf/sweep/signals.h"

namespace sensecf::cli {

int cmd_sweep(const std::vector<std::string>& args) {
  // First thing: a SIGUSR1/SIGTERM that arrives while MPI and LibTorch start up
  // must drain the sweep, not kill the rank.
  sweep::install_stop_handlers();
  sweep::SweepConfig config;
  sweep::RunOptions run;
  LogOptions log;
  std::string results = "results/sweep.h5";
  std::string workdir;
  bool dry_run = false, retry_failed = false;
  Options options("sweep",
                  "Run a sweep (the paper's study or your variation of it) on every rank of an MPI job:\n"
                  "  mpirun -np 3 sensecf sweep --config configs/quickstart.ini --results results/q.h5\n"
                  "Without --config it runs the built-in default, configs/quickstart.ini.\n"
                  "Rank 0 coordinates and writes the HDF5 results file and its journal (R.h5.journal); the other\n"
                  "ranks pull tasks. Rerunning the same command resumes: finished tasks are skipped.\n"
                  "Exit codes: 0 done, 1 error, 2 usage/config error, 3 some tasks failed after every retry,\n"
                  "75 stopped by SIGTERM/SIGUSR1/SIGINT (everything finished is saved; rerun to resume).");
  sweep::declare_options(options, config);
  options.set_default_config("<built-in configs/quickstart.ini>", sweep::kQuickstartConfig);
  options.add("run.results", &results, "HDF5 results file (its journal is the same path + .journal)", "results")
      .not_hashed();
  options.add("run.workdir", &workdir, "directory for task artifacts (default: the results path without .h5, + .work)",
              "workdir")
      .not_hashed();
  options.add("run.dry_run", &dry_run, "print the plan and what is already done, run nothing", "dry-run")
      .not_hashed();
  options.add("run.retry_failed", &retry_failed,
              "give tasks that failed every attempt in an earlier run new attempts", "retry-failed")
      .not_hashed();
  std::string locking = "best-effort";
  options.add("run.hdf5_locking", &locking,
              "HDF5 file locking: best-effort ignores file systems without locks (NFS); off disables it "
              "(only rank 0 ever opens the file)")
      .choices({"on", "off", "best-effort"})
      .not_hashed();
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  store::set_file_locking(store::parse_file_locking(locking));

  dist::MpiEnv mpi(nullptr, nullptr);
  init_logging(log, mpi.rank(), mpi.size(), mpi.host());
  sweep::check_launch(mpi.size());
  run.results = results;
  run.workdir = workdir.empty() ? std::filesystem::path(results).replace_extension("").string() + ".work" : workdir;
  run.dry_run = dry_run;
  run.retry_failed = retry_failed;
  // An AI-READI release is part of the sweep's identity: changed files are
  // refused on resume like a changed option.
  const bool aireadi = config.sweep.plan == "study" && config.data.source == "aireadi";
  if (aireadi) config.data_fingerprint = ingest::release_fingerprint(config.ingest);
  run.identity = sweep::sweep_identity(options, config.data_fingerprint);
  if (mpi.rank() == 0) {
    const auto dir = std::filesystem::path(results).parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir)) std::filesystem::create_directories(dir);
  }
  return sweep::run_sweep(mpi, config, run);
}

}  // namespace sensecf::cli
