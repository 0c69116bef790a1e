// A sweep's worker side: running one attempt of a task, and the loop of a
// worker rank that pulls tasks from the coordinator (protocol.h) until told to
// stop. Rank 0 of a one-rank job calls execute() itself. The worker neither
// schedules nor writes results: it returns each attempt's record.
#pragma once

#include <map>
#include <string>

#include "sensecf/dist/mpi_env.h"
#include "sensecf/sweep/journal.h"
#include "sensecf/sweep/plan.h"
#include "sensecf/sweep/tasks.h"

namespace sensecf::sweep {

// Per-task log files: from now on, what a task logs while execute() runs it
// (info and above, debug at --log.level debug) is appended to
// <workdir>/tasks/<key>/log.txt as well, each attempt under a header line,
// whatever this rank prints on stderr (workers: warnings only). Call once,
// before any thread logs.
void install_task_logs();

// Runs attempt `attempt` of `task` on this rank. Every exception becomes a
// failed record carrying its message (and hint); the record names the rank,
// host and device that ran it.
JournalEntry execute(const Task& task, int attempt, const TaskEnv& env, int rank, const std::string& host);

// Asks rank 0 for work, runs what it sends (as a gang where it says so) and
// reports each attempt, until rank 0 says stop; returns the exit code it sent.
int worker_loop(const dist::MpiEnv& mpi, const TaskEnv& env, const std::map<std::string, const Task*>& by_key);

}  // namespace sensecf::sweep
