// SIGTERM / SIGUSR1 / SIGINT: what a batch system sends before it ends a job
// (time limit, preemption). The handler only sets a flag; the sweep stops
// handing out work, lets running tasks finish within the grace period, saves
// everything and exits with kExitInterrupted so that the job script requeues.
#pragma once

#include <atomic>

namespace sensecf::sweep {

// Exit codes of `sensecf sweep` (documented in docs/hpc.md and used by jobs/).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitTasksFailed = 3;    // finished, but some tasks failed after every retry
inline constexpr int kExitInterrupted = 75;   // stopped by a signal; rerun the same command to resume (EX_TEMPFAIL)

void install_stop_handlers();
const std::atomic<bool>& stop_flag();
bool stop_requested();
int stop_signal();  // the signal that set the flag, 0 if none
// For tests and for ranks that learn about a stop from the coordinator.
void request_stop(int signal);

}  // namespace sensecf::sweep
