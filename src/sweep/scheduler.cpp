// Task states of a sweep: priorities, ready queue, retries, gangs, replay. See
// scheduler.h.
#include "sensecf/sweep/scheduler.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

#include <algorithm>
#include <ostream>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/sweep/signals.h"

namespace sensecf::sweep {
namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Scheduler::Scheduler(const std::vector<Task>& tasks, const SweepOptions& options, int n_workers)
    : plan_(options.plan), max_attempts_(options.max_attempts), n_workers_(std::max(1, n_workers)) {
  for (const auto& t : tasks) {
    index_[t.key] = nodes_.size();
    Node n;
    n.task = &t;
    nodes_.push_back(n);
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    for (const auto& dep : nodes_[i].task->deps) {
      const auto it = index_.find(dep);
      if (it == index_.end() || it->second >= i)
        throw Error(fmt::format("task {} depends on {}, which is not listed before it in the plan",
                                nodes_[i].task->label(), dep),
                    "the plan must list every task after its dependencies (build_plan does)");
      nodes_[it->second].dependents.push_back(i);
    }
  }
  for (const auto& t : tasks) {
    if (t.ranks > n_workers_) {
      spdlog::warn("{} asks for {} ranks, the job has {} worker(s): it runs on {}", t.label(), t.ranks, n_workers_,
                   n_workers_);
    }
  }
  // topological order: priorities from the end
  for (std::size_t i = nodes_.size(); i-- > 0;) {
    double longest = 0;
    for (auto d : nodes_[i].dependents) longest = std::max(longest, nodes_[d].priority);
    nodes_[i].priority = nodes_[i].task->cost + longest;
  }
  settle();
}

void Scheduler::replay(const std::vector<JournalEntry>& entries, bool retry_failed) {
  for (const auto& e : entries) {
    const auto it = index_.find(e.record.key);
    if (it == index_.end()) continue;  // not part of this plan (cannot happen with an equal config)
    auto& n = nodes_[it->second];
    n.attempts = std::max(n.attempts, static_cast<int>(e.record.attempt));
    if (e.record.status == "done") {
      // Measured times of earlier runs calibrate the estimate from the start
      // (--dry-run of a resume, the first ETA).
      if (n.state != TaskState::kDone) {
        observed_ += e.record.seconds;
        estimated_ += n.task->cost;
      }
      n.state = TaskState::kDone;
    } else if (n.state != TaskState::kDone) {
      n.last_message = e.record.message;
    }
  }
  for (auto& n : nodes_) {
    if (n.state == TaskState::kDone || n.attempts < max_attempts_) continue;
    if (retry_failed) n.attempts = 0;
    else n.state = TaskState::kFailed;
  }
  settle();
  done_at_start_ = count(TaskState::kDone);
}

// Derives every other state from the done and failed tasks: dependents of a
// failed task are blocked, tasks whose dependencies are all done are ready.
void Scheduler::settle() {
  for (auto& n : nodes_) {
    if (n.state != TaskState::kDone && n.state != TaskState::kFailed) n.state = TaskState::kWaiting;
    n.deps_left = 0;
  }
  for (const auto& n : nodes_) {
    if (n.state == TaskState::kDone) continue;
    for (auto d : n.dependents) ++nodes_[d].deps_left;
  }
  reindex();
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].state == TaskState::kFailed) block_dependents(i);
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].state == TaskState::kWaiting && nodes_[i].deps_left == 0) set_state(i, TaskState::kReady);
  }
}

std::optional<Assignment> Scheduler::assign(const std::vector<int>& idle_workers) {
  if (ready_.empty()) return std::nullopt;
  const std::size_t best = ready_.begin()->second;
  auto& n = nodes_[best];
  const int ranks = std::clamp(n.task->ranks, 1, n_workers_);
  if (static_cast<int>(idle_workers.size()) < ranks) return std::nullopt;  // the gang waits for enough idle workers
  set_state(best, TaskState::kRunning);
  ++n.attempts;
  n.started = Clock::now();
  n.ranks.assign(idle_workers.begin(), idle_workers.begin() + ranks);
  n.results_pending = ranks;
  n.gang_result.reset();
  return Assignment{n.task, n.attempts, n.ranks};
}

Finished Scheduler::finish(JournalEntry e, int rank) {
  const auto it = index_.find(e.record.key);
  if (it == index_.end()) throw Error("worker " + std::to_string(rank) + " reported unknown task " + e.record.key);
  const std::size_t i = it->second;
  auto& n = nodes_[i];
  if (n.state != TaskState::kRunning)
    throw Error(fmt::format("worker {} reported {} [{}], which is not running", rank, n.task->label(), n.task->key));
  // A gang's attempt is done when every member reported; it failed if any did.
  if (!n.gang_result || (e.record.status == "failed" && n.gang_result->record.status == "done") ||
      (e.record.status == n.gang_result->record.status && e.record.rank < n.gang_result->record.rank)) {
    n.gang_result = std::move(e);
  }
  if (--n.results_pending > 0) return {Outcome::kGangPending, std::nullopt};
  Finished finished;
  finished.entry = std::move(*n.gang_result);
  const auto& record = finished.entry->record;
  n.gang_result.reset();
  n.ranks.clear();
  if (record.status == "done") {
    finished.outcome = Outcome::kDone;
    set_state(i, TaskState::kDone);
    for (auto d : n.dependents) {
      if (--nodes_[d].deps_left == 0 && nodes_[d].state == TaskState::kWaiting) set_state(d, TaskState::kReady);
    }
    observed_ += record.seconds;
    estimated_ += n.task->cost;
  } else {
    n.last_message = record.message;
    if (n.attempts < max_attempts_ && finished.entry->retryable) {
      finished.outcome = Outcome::kRetrying;
      set_state(i, TaskState::kReady);
      spdlog::info("{}: attempt {} of {} failed, retrying", n.task->label(), n.attempts, max_attempts_);
    } else {
      finished.outcome = Outcome::kFailed;
      set_state(i, TaskState::kFailed);
      spdlog::error("{}: failed after {} attempt(s): {}", n.task->label(), n.attempts, n.last_message);
      block_dependents(i);
    }
  }
  return finished;
}

std::size_t Scheduler::index_of(const std::string& key) const {
  const auto it = index_.find(key);
  if (it == index_.end()) throw Error("no task with key " + key + " in the plan");
  return it->second;
}

TaskState Scheduler::state(const std::string& key) const { return nodes_[index_of(key)].state; }
int Scheduler::attempts(const std::string& key) const { return nodes_[index_of(key)].attempts; }

int Scheduler::count(TaskState state) const {
  const auto it = counts_.find(state);
  return it == counts_.end() ? 0 : it->second;
}

double Scheduler::remaining_cost() const {
  double c = 0;
  for (const auto& n : nodes_) {
    if (n.state == TaskState::kReady || n.state == TaskState::kWaiting || n.state == TaskState::kRunning)
      c += n.task->cost;
  }
  return c;
}

double Scheduler::cost_scale() const { return estimated_ > 0 && observed_ > 0 ? observed_ / estimated_ : 1.0; }

std::optional<double> Scheduler::eta_seconds() const {
  if (count(TaskState::kDone) <= done_at_start_ && estimated_ <= 0) return std::nullopt;
  return remaining_cost() * cost_scale() / n_workers_;
}

int Scheduler::exit_code(bool interrupted) const {
  if (interrupted) return kExitInterrupted;
  return count(TaskState::kFailed) + count(TaskState::kBlocked) > 0 ? kExitTasksFailed : kExitOk;
}

// Every state change of a task after settle() goes through here, keeping the
// counts and the ready queue in step.
void Scheduler::set_state(std::size_t i, TaskState state) {
  auto& n = nodes_[i];
  if (n.state == TaskState::kReady) ready_.erase({n.priority, i});
  --counts_[n.state];
  n.state = state;
  ++counts_[state];
  if (state == TaskState::kReady) ready_.insert({n.priority, i});
}

void Scheduler::reindex() {
  counts_.clear();
  ready_.clear();
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    ++counts_[nodes_[i].state];
    if (nodes_[i].state == TaskState::kReady) ready_.insert({nodes_[i].priority, i});
  }
}

void Scheduler::block_dependents(std::size_t i) {
  for (auto d : nodes_[i].dependents) {
    if (nodes_[d].state == TaskState::kBlocked || nodes_[d].state == TaskState::kDone) continue;
    set_state(d, TaskState::kBlocked);
    block_dependents(d);
  }
}

void Scheduler::print_plan(std::ostream& out) const {
  std::map<std::string, std::map<TaskState, int>> by_kind;
  std::vector<std::string> kinds;
  for (const auto& n : nodes_) {
    if (!by_kind.count(n.task->kind)) kinds.push_back(n.task->kind);
    ++by_kind[n.task->kind][n.state];
  }
  out << fmt::format("plan: {} tasks ({} plan)\n", nodes_.size(), plan_);
  out << fmt::format("  {:<10} {:>7} {:>7} {:>7} {:>9} {:>7}\n", "kind", "tasks", "done", "failed", "blocked",
                     "to run");
  int total_run = 0;
  for (const auto& k : kinds) {
    auto c = by_kind[k];
    const int n = c[TaskState::kWaiting] + c[TaskState::kReady] + c[TaskState::kDone] + c[TaskState::kFailed] +
                  c[TaskState::kBlocked];
    const int to_run = c[TaskState::kWaiting] + c[TaskState::kReady];
    total_run += to_run;
    out << fmt::format("  {:<10} {:>7} {:>7} {:>7} {:>9} {:>7}\n", k, n, c[TaskState::kDone], c[TaskState::kFailed],
                       c[TaskState::kBlocked], to_run);
  }
  // The same model as the progress ETA and `sensecf status`: the tasks' cost
  // estimates, scaled by measured/estimated time of the tasks done so far
  // (earlier runs of this results file), over the worker ranks.
  const double work = remaining_cost() * cost_scale();
  out << fmt::format("would run {} tasks on {} worker rank(s): estimated {} of work, about {} wall time{}\n", total_run,
                     n_workers_, format_duration(work), format_duration(work / n_workers_),
                     estimated_ > 0 ? fmt::format(" (scaled by the {:.2f}x measured on the tasks already done)",
                                                  cost_scale())
                                    : std::string(" (from the tasks' cost estimates; the progress ETA refines it "
                                                  "with measured times)"));
}

nlohmann::json Scheduler::status_json(const std::string& state) const {
  auto counts = [] {
    return nlohmann::json{{"tasks", 0}, {"done", 0}, {"failed", 0}, {"blocked", 0}, {"running", 0}, {"pending", 0}};
  };
  auto bump = [](nlohmann::json& c, TaskState s) {
    c["tasks"] = c["tasks"].get<int>() + 1;
    const char* k = s == TaskState::kDone      ? "done"
                    : s == TaskState::kFailed  ? "failed"
                    : s == TaskState::kBlocked ? "blocked"
                    : s == TaskState::kRunning ? "running"
                                               : "pending";
    c[k] = c[k].get<int>() + 1;
  };
  nlohmann::json total = counts(), by_kind = nlohmann::json::object(), by_method = nlohmann::json::object();
  nlohmann::json running = nlohmann::json::array(), failed = nlohmann::json::array();
  for (const auto& n : nodes_) {
    bump(total, n.state);
    if (!by_kind.contains(n.task->kind)) by_kind[n.task->kind] = counts();
    bump(by_kind[n.task->kind], n.state);
    const std::string method = n.task->param("method");
    if (!method.empty()) {
      if (!by_method.contains(method)) by_method[method] = counts();
      bump(by_method[method], n.state);
    }
    if (n.state == TaskState::kRunning)
      running.push_back({{"ranks", n.ranks}, {"label", n.task->label()}, {"key", n.task->key},
                         {"seconds", since(n.started)}});
    if (n.state == TaskState::kFailed)
      failed.push_back({{"label", n.task->label()}, {"key", n.task->key}, {"attempts", n.attempts},
                        {"message", n.last_message}});
  }
  const auto eta = eta_seconds();
  return {{"state", state},
          {"updated", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()},
          {"elapsed", since(start_)},
          {"eta_seconds", eta ? nlohmann::json(*eta) : nlohmann::json(nullptr)},
          {"total", total},
          {"by_kind", by_kind},
          {"by_method", by_method},
          {"running", running},
          {"failed", failed}};
}

std::string Scheduler::progress_line() const {
  std::string running;
  for (const auto& n : nodes_) {
    if (n.state != TaskState::kRunning) continue;
    running += fmt::format("{}[r{} {} {}]", running.empty() ? "" : " ", n.ranks.empty() ? 0 : n.ranks.front(),
                           n.task->label(), format_duration(since(n.started)));
  }
  const auto eta = eta_seconds();
  return fmt::format("progress: {}/{} done, {} failed, {} running, elapsed {}, ETA {} {}", count(TaskState::kDone),
                     nodes_.size(), count(TaskState::kFailed), running_count(), format_duration(since(start_)),
                     eta ? format_duration(*eta) : std::string("?"), running);
}

void Scheduler::log_summary(int code, const std::string& results) const {
  const int failed = count(TaskState::kFailed), blocked = count(TaskState::kBlocked);
  const double elapsed = since(start_);
  const int ran = count(TaskState::kDone) - done_at_start_;
  spdlog::info("sweep {} in {}: {} of {} tasks done ({} in earlier runs; {:.1f} tasks/s), {} failed, {} skipped; "
               "results in {}",
               code == kExitInterrupted ? "interrupted" : "finished", format_duration(elapsed),
               count(TaskState::kDone), nodes_.size(), done_at_start_, elapsed > 0 ? ran / elapsed : 0.0, failed,
               blocked, results);
  for (const auto& n : nodes_) {
    if (n.state == TaskState::kFailed)
      spdlog::error("failed: {} [{}] after {} attempt(s): {}", n.task->label(), n.task->key, n.attempts,
                    n.last_message);
  }
  if (blocked > 0) spdlog::error("{} task(s) were skipped because a task they depend on failed", blocked);
  if (code == kExitInterrupted) {
    spdlog::warn("rerun the same command to resume (exit code {} asks the job script to requeue)", code);
    const int sig = stop_signal();
    if ((sig == SIGTERM || sig == SIGINT) && std::getenv("OMPI_COMM_WORLD_SIZE")) {
      // Open MPI's mpirun aborts the job on a SIGTERM/SIGINT of its own and
      // exits 1 whatever the ranks return; only forwarded signals keep 75.
      spdlog::warn("if that signal went to mpirun, mpirun exits 1, not {}: Open MPI aborts a job on SIGTERM/SIGINT. "
                   "Everything finished is saved all the same. For exit code {}, send SIGUSR1 to mpirun, or launch "
                   "with jobs/local.sh or a job script in jobs/, which do",
                   code, code);
    }
  }
  else if (failed > 0)
    spdlog::warn("rerun with --retry-failed to give the failed tasks {} more attempt(s)", max_attempts_);
}

}  // namespace sensecf::sweep
