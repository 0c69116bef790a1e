// Running one task of the plan on this rank: run_task finds the task's kind
// (sweep/kind.h) and runs it.
//
// Tasks share files through the work directory (a shared file system on a
// cluster): task T writes only under <workdir>/tasks/<T.key>/ and reads its
// named inputs' directories, through task_io.h. Everything that goes into the
// results file is returned as a TaskOutput; a task that cannot finish throws
// (the runner records the failure and retries).
#pragma once

#include <mpi.h>

#include <atomic>
#include <string>

#include "sensecf/store/results.h"
#include "sensecf/sweep/plan.h"
#include "sensecf/sweep/task_io.h"

namespace sensecf::sweep {

struct TaskEnv {
  const SweepConfig* config = nullptr;
  std::string workdir;
  int threads = 1;                       // CPU threads this task may use
  std::string device = "cpu";            // "cpu" or "cuda:N"
  MPI_Comm gang = MPI_COMM_SELF;         // the ranks running this task together (Task::ranks)
  int attempt = 1;                       // 1-based
  const std::atomic<bool>* stop = nullptr;  // set on SIGTERM/SIGUSR1: long tasks checkpoint and end early
};

// Before any task runs (rank 0): creates the work directory and, when
// data.source = synth, writes the cohort there as cohort.csv (deterministic for
// the options).
void prepare_workdir(const SweepConfig& config, const std::string& workdir);

store::TaskOutput run_task(const Task& task, const TaskEnv& env);

}  // namespace sensecf::sweep
