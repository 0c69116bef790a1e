// The state machine of a sweep's tasks, without MPI: which task runs next and
// on how many workers, what a finished attempt changes (retry, failure,
// dependents unblocked or blocked), what the journal of an earlier run already
// settled, and the counts, remaining cost and ETA that the plan table, the
// progress lines and the final summary print.
//
// Scheduling: the ready task with the longest remaining path (sum of Task::cost
// down to the end of the DAG) goes first, ties in plan order. A task that needs
// k ranks (a gang; k is capped at the number of workers) waits until k workers
// are idle; its attempt is done when every member reported, and failed if any
// member failed. A failed attempt is retried until SweepOptions::max_attempts;
// then the task is failed and everything that depends on it is blocked.
//
// It does not send, receive, run or store anything: the coordinator
// (runner.cpp) moves messages and commits the records finish() hands back.
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/sweep/journal.h"
#include "sensecf/sweep/plan.h"

namespace sensecf::sweep {

enum class TaskState { kWaiting, kReady, kRunning, kDone, kFailed, kBlocked };

// One attempt handed to workers.
struct Assignment {
  const Task* task = nullptr;
  int attempt = 0;         // 1-based, attempts of earlier runs included
  std::vector<int> ranks;  // the idle workers that run it together (more than one: a gang)
};

// What one worker's report changed.
enum class Outcome {
  kGangPending,  // other members of the gang have not reported yet
  kDone,         // the task is done; dependents whose every dependency is done are ready
  kRetrying,     // the attempt failed; the task is ready again
  kFailed,       // the last allowed attempt failed; the task's dependents are blocked
};

struct Finished {
  Outcome outcome = Outcome::kGangPending;
  // The attempt's record (for a gang: the first failed member's, else the
  // lowest rank's), to append to the journal and the results file; empty while
  // the gang is pending.
  std::optional<JournalEntry> entry;
};

class Scheduler {
 public:
  // `tasks` in topological order (build_plan's), kept by reference: they must
  // outlive the scheduler. `n_workers` (at least 1) caps the size of gangs.
  Scheduler(const std::vector<Task>& tasks, const SweepOptions& options, int n_workers);

  // Applies the journal of earlier runs, once, before the first assign(): done
  // tasks stay done, a task with max_attempts failed attempts is failed (or,
  // with `retry_failed`, gets max_attempts new ones). Attempt numbers continue.
  void replay(const std::vector<JournalEntry>& entries, bool retry_failed);

  // The next attempt to run on (the first ones of) `idle_workers`, or nothing
  // when no task is ready or the best one needs more idle workers than there are.
  std::optional<Assignment> assign(const std::vector<int>& idle_workers);
  // A worker's (`rank`'s) report of an attempt assign() handed out. Throws
  // Error for a task that is unknown or not running.
  Finished finish(JournalEntry entry, int rank);

  TaskState state(const std::string& key) const;
  int attempts(const std::string& key) const;  // made so far, journal included
  int count(TaskState state) const;
  std::size_t size() const { return nodes_.size(); }
  int running_count() const { return count(TaskState::kRunning); }
  bool work_left() const { return count(TaskState::kReady) + count(TaskState::kWaiting) > 0; }
  // Estimated seconds (Task::cost) of the tasks not finished yet, running ones included.
  double remaining_cost() const;
  // Measured / estimated seconds of the tasks done so far (this run and the
  // journal's); 1 before any.
  double cost_scale() const;
  // Wall time left: remaining cost x cost_scale() over the workers: the model
  // --dry-run prints too. Nothing before a first task is done (in this run or
  // an earlier one).
  std::optional<double> eta_seconds() const;
  // kExitInterrupted, kExitTasksFailed (a task failed or was blocked) or kExitOk.
  int exit_code(bool interrupted) const;

  // Per kind: tasks, done, failed, blocked, to run; and the estimated work.
  void print_plan(std::ostream& out) const;
  // "progress: 12/60 done, ... ETA 1m05s [r1 probe #12 3s] ..."
  std::string progress_line() const;
  // What `sensecf status` shows (the coordinator writes it next to the results
  // file as <results>.status.json): state (running | finished | interrupted),
  // updated (Unix time), elapsed and ETA seconds, totals and counts per kind
  // and per CF method (tasks, done, failed, blocked, running, pending), every
  // running task (ranks, label, key, seconds) and every failed one (label,
  // key, attempts, message).
  nlohmann::json status_json(const std::string& state) const;
  // The closing lines (counts, rate, every failed task, what to rerun) on the log.
  void log_summary(int code, const std::string& results) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Node {
    const Task* task = nullptr;
    TaskState state = TaskState::kWaiting;
    int attempts = 0;
    int deps_left = 0;      // dependencies not done yet
    double priority = 0;    // cost of the longest path from here to the end of the DAG
    std::vector<std::size_t> dependents;
    std::vector<int> ranks;           // while running
    int results_pending = 0;          // gang members still to report
    std::optional<JournalEntry> gang_result;
    std::string last_message;
    Clock::time_point started;
  };
  // Highest priority first, ties in plan order.
  struct ByPriority {
    bool operator()(const std::pair<double, std::size_t>& a, const std::pair<double, std::size_t>& b) const {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    }
  };

  std::size_t index_of(const std::string& key) const;
  void set_state(std::size_t i, TaskState state);
  void settle();
  void reindex();
  void block_dependents(std::size_t i);

  std::vector<Node> nodes_;
  std::map<std::string, std::size_t> index_;
  std::map<TaskState, int> counts_;
  std::set<std::pair<double, std::size_t>, ByPriority> ready_;  // (priority, index) of the ready tasks
  std::string plan_;
  int max_attempts_ = 1;
  int n_workers_ = 1;
  Clock::time_point start_ = Clock::now();
  int done_at_start_ = 0;                  // done before this run (journal)
  double observed_ = 0, estimated_ = 0;   // seconds taken and Task::cost of the tasks done (this run and the journal's)
};

}  // namespace sensecf::sweep
