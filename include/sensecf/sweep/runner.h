// Running a sweep on an MPI job: rank 0 is the coordinator (the plan, the only
// writer of the results file and journal), every other rank a worker that
// pulls tasks. With one rank, rank 0 runs the tasks itself.
//
// Protocol (variable-size JSON messages on MPI_COMM_WORLD):
//   worker -> 0   kTagReady   {}                        first request for work
//   worker -> 0   kTagResult  {record, output}          a finished attempt; also asks for the next task
//   0 -> worker   kTagTask    {task, attempt, gang}     run this (gang: the ranks that run it together)
//   0 -> worker   kTagStop    {code}                    no more work: exit with code
// The coordinator hands out the ready task with the longest remaining path
// first; a task that needs k ranks waits until k workers are idle.
#pragma once

#include <string>

#include "sensecf/dist/mpi_env.h"
#include "sensecf/sweep/plan.h"

namespace sensecf::sweep {

struct RunOptions {
  std::string results;       // the HDF5 results file; its journal is results + ".journal"
  std::string workdir;       // task artifacts
  bool dry_run = false;      // print the plan and what is done, run nothing
  bool retry_failed = false; // give tasks that failed every attempt in an earlier run new attempts
  std::string config_text;   // effective INI (provenance)
  std::string config_canonical;  // hashed "key = value" lines (resume check)
  std::string config_hash;
};

// Runs (or resumes) the sweep on every rank of `mpi`; returns the exit code
// (signals.h), the same on every rank.
int run_sweep(const dist::MpiEnv& mpi, const SweepConfig& config, const RunOptions& options);

}  // namespace sensecf::sweep
