// Running a sweep on an MPI job: rank 0 is the coordinator (the plan, the only
// writer of the results file and journal), every other rank a worker that
// pulls tasks. With one rank, rank 0 runs the tasks itself.
//
// The pieces: protocol.h (the messages), scheduler.h (which task runs next,
// retries, gangs), worker.h (running one attempt), journal.h (durability),
// identity.h (what must match to resume). The runner glues them: it opens or
// resumes the outputs, moves messages between the workers and the scheduler,
// commits finished attempts, and drains on SIGTERM/SIGUSR1 (signals.h).
#pragma once

#include <string>

#include "sensecf/dist/mpi_env.h"
#include "sensecf/sweep/identity.h"
#include "sensecf/sweep/plan.h"

namespace sensecf::sweep {

struct RunOptions {
  std::string results;       // the HDF5 results file; its journal is results + ".journal"
  std::string workdir;       // task artifacts
  bool dry_run = false;      // print the plan and what is done, run nothing
  bool retry_failed = false; // give tasks that failed every attempt in an earlier run new attempts
  SweepIdentity identity;    // provenance and the resume check
};

// Runs (or resumes) the sweep on every rank of `mpi`; returns the exit code
// (signals.h), the same on every rank.
int run_sweep(const dist::MpiEnv& mpi, const SweepConfig& config, const RunOptions& options);

}  // namespace sensecf::sweep
