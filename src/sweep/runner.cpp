// Coordinator (rank 0) and worker loops of a sweep. See runner.h for the
// protocol and journal.h for durability.
#include "sensecf/sweep/runner.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "sensecf/core/build_info.h"
#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/core/log.h"
#include "sensecf/core/provenance.h"
#include "sensecf/dist/device.h"
#include "sensecf/store/results.h"
#include "sensecf/sweep/journal.h"
#include "sensecf/sweep/signals.h"
#include "sensecf/sweep/tasks.h"

namespace sensecf::sweep {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kTagReady = 101;
constexpr int kTagResult = 102;
constexpr int kTagTask = 103;
constexpr int kTagStop = 104;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void send_json(const nlohmann::json& j, int dest, int tag) {
  const std::string text = j.dump();
  SENSECF_MPI_CHECK(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, MPI_COMM_WORLD));
}

// Receives the message `probe` found (Mprobe/Mrecv: no other receive can steal it).
nlohmann::json receive_json(MPI_Message* message, const MPI_Status& status) {
  int count = 0;
  SENSECF_MPI_CHECK(MPI_Get_count(&status, MPI_CHAR, &count));
  std::string text(static_cast<std::size_t>(count), '\0');
  SENSECF_MPI_CHECK(MPI_Mrecv(text.data(), count, MPI_CHAR, message, MPI_STATUS_IGNORE));
  return text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text);
}

// Polls for a message without spinning a core: short busy phase, then sleeps
// that grow to 1 ms (the coordinator shares cores with workers).
class Backoff {
 public:
  void reset() { idle_polls_ = 0; }
  void wait() {
    if (++idle_polls_ < 64) return;
    const auto us = std::min<long>(1000, 20L << std::min(6, (idle_polls_ - 64) / 16));
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  }

 private:
  int idle_polls_ = 0;
};

std::string format_duration(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{}m{:02d}s", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  return fmt::format("{}h{:02d}m", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
}

// Runs one attempt and turns every exception into a failed record.
JournalEntry execute(const Task& task, int attempt, const TaskEnv& base, int rank, const std::string& host) {
  TaskEnv env = base;
  env.attempt = attempt;
  JournalEntry e;
  auto& r = e.record;
  r.key = task.key;
  r.kind = task.kind;
  r.label = task.label();
  r.method = task.param("method");
  r.scenario = task.param("scenario");
  r.model = task.param("model");
  r.seed = task.params.value("seed", 0LL);
  r.ratio = task.params.contains("ratio") ? task.params["ratio"].get<double>() : task.params.value("reduction", 0.0);
  r.attempt = attempt;
  r.rank = rank;
  r.host = host;
  r.device = env.device == "cpu" ? fmt::format("cpu:{}", env.threads) : env.device;
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible && env.device != "cpu")
    r.device += fmt::format(" ({})", visible);  // which physical GPU, under --gpus-per-task
  r.started = unix_now();
  const auto start = Clock::now();
  try {
    e.output = run_task(task, env);
    r.status = "done";
  } catch (const std::exception& ex) {
    r.status = "failed";
    r.message = ex.what();
    if (const auto* err = dynamic_cast<const Error*>(&ex); err && !err->hint().empty())
      r.message += " (hint: " + err->hint() + ")";
    e.output = {};
    spdlog::warn("task {} (attempt {}) failed: {}", r.label, attempt, r.message);
  }
  r.seconds = since(start);
  return e;
}

// --- worker ---------------------------------------------------------------------------

int worker_loop(const dist::MpiEnv& mpi, const TaskEnv& base, const std::map<std::string, const Task*>& by_key) {
  send_json(nlohmann::json::object(), 0, kTagReady);
  Backoff backoff;
  for (;;) {
    int found = 0;
    MPI_Message message;
    MPI_Status status;
    SENSECF_MPI_CHECK(MPI_Improbe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &found, &message, &status));
    if (!found) {
      backoff.wait();
      continue;
    }
    backoff.reset();
    const auto j = receive_json(&message, status);
    if (status.MPI_TAG == kTagStop) return j.at("code").get<int>();
    const auto it = by_key.find(j.at("key").get<std::string>());
    if (it == by_key.end()) throw Error("coordinator sent unknown task " + j.at("key").get<std::string>());
    TaskEnv env = base;
    MPI_Comm gang = MPI_COMM_NULL;
    const auto members = j.at("gang").get<std::vector<int>>();
    if (members.size() > 1) {
      MPI_Group world_group, gang_group;
      SENSECF_MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world_group));
      SENSECF_MPI_CHECK(MPI_Group_incl(world_group, static_cast<int>(members.size()), members.data(), &gang_group));
      SENSECF_MPI_CHECK(MPI_Comm_create_group(MPI_COMM_WORLD, gang_group, j.at("gang_id").get<int>(), &gang));
      MPI_Group_free(&gang_group);
      MPI_Group_free(&world_group);
      env.gang = gang;
    }
    const auto entry = execute(*it->second, j.at("attempt").get<int>(), env, mpi.rank(), mpi.host());
    if (gang != MPI_COMM_NULL) MPI_Comm_free(&gang);
    send_json({{"record", store::to_json(entry.record)}, {"output", store::to_json(entry.output)}}, 0, kTagResult);
  }
}

// --- coordinator ----------------------------------------------------------------------

enum class State { kWaiting, kReady, kRunning, kDone, kFailed, kBlocked };

struct TaskState {
  const Task* task = nullptr;
  State state = State::kWaiting;
  int attempts = 0;           // attempts made (journal included)
  int deps_left = 0;
  double priority = 0;        // cost of the longest path from here to the end of the DAG
  std::vector<std::size_t> dependents;
  std::vector<int> ranks;     // while running
  int results_pending = 0;    // gang members still to report
  std::optional<JournalEntry> gang_result;
  std::string last_message;
  Clock::time_point started;
};

class Coordinator {
 public:
  Coordinator(const dist::MpiEnv& mpi, const SweepConfig& config, const RunOptions& options,
              const std::vector<Task>& tasks, const TaskEnv& env)
      : mpi_(mpi), config_(config), options_(options), env_(env) {
    for (const auto& t : tasks) {
      index_[t.key] = states_.size();
      TaskState s;
      s.task = &t;
      states_.push_back(s);
    }
    for (std::size_t i = 0; i < states_.size(); ++i) {
      for (const auto& dep : states_[i].task->deps) {
        states_[index_.at(dep)].dependents.push_back(i);
        ++states_[i].deps_left;
      }
    }
    const int n_workers = std::max(1, mpi.size() - 1);
    for (const auto& t : tasks) {
      if (t.ranks > n_workers) {
        spdlog::warn("{} asks for {} ranks, the job has {} worker(s): it runs on {}", t.label(), t.ranks, n_workers,
                     n_workers);
      }
    }
    // tasks are in topological order: priorities from the end
    for (std::size_t i = states_.size(); i-- > 0;) {
      double longest = 0;
      for (auto d : states_[i].dependents) longest = std::max(longest, states_[d].priority);
      states_[i].priority = states_[i].task->cost + longest;
    }
  }

  // Applies what the journal says is already done or failed.
  void replay(const std::vector<JournalEntry>& entries) {
    for (const auto& e : entries) {
      const auto it = index_.find(e.record.key);
      if (it == index_.end()) continue;  // not part of this plan (cannot happen with an equal config)
      auto& s = states_[it->second];
      s.attempts = std::max(s.attempts, static_cast<int>(e.record.attempt));
      if (e.record.status == "done") s.state = State::kDone;
      else if (s.state != State::kDone) s.last_message = e.record.message;
    }
    for (auto& s : states_) {
      if (s.state == State::kDone) continue;
      if (s.attempts >= config_.sweep.max_attempts) {
        if (options_.retry_failed) {
          s.attempts = 0;
        } else {
          s.state = State::kFailed;
        }
      }
    }
    for (std::size_t i = 0; i < states_.size(); ++i) {
      if (states_[i].state == State::kDone)
        for (auto d : states_[i].dependents) --states_[d].deps_left;
    }
    for (std::size_t i = 0; i < states_.size(); ++i) {
      if (states_[i].state == State::kFailed) block_dependents(i);
    }
    for (auto& s : states_) {
      if (s.state == State::kWaiting && s.deps_left == 0) s.state = State::kReady;
    }
    reindex();
  }

  void print_plan(std::ostream& out) const {
    std::map<std::string, std::map<State, int>> by_kind;
    std::vector<std::string> kinds;
    for (const auto& s : states_) {
      if (!by_kind.count(s.task->kind)) kinds.push_back(s.task->kind);
      ++by_kind[s.task->kind][s.state];
    }
    out << fmt::format("plan: {} tasks ({} plan)\n", states_.size(), config_.sweep.plan);
    out << fmt::format("  {:<10} {:>7} {:>7} {:>7} {:>9} {:>7}\n", "kind", "tasks", "done", "failed", "blocked",
                       "to run");
    int total_run = 0;
    for (const auto& k : kinds) {
      auto c = by_kind[k];
      const int n = c[State::kWaiting] + c[State::kReady] + c[State::kDone] + c[State::kFailed] + c[State::kBlocked];
      const int to_run = c[State::kWaiting] + c[State::kReady];
      total_run += to_run;
      out << fmt::format("  {:<10} {:>7} {:>7} {:>7} {:>9} {:>7}\n", k, n, c[State::kDone], c[State::kFailed],
                         c[State::kBlocked], to_run);
    }
    out << fmt::format("would run {} tasks on {} worker rank(s); estimated {} of work\n", total_run,
                       std::max(1, mpi_.size() - 1), format_duration(remaining_cost()));
  }

  int run(store::ResultsWriter& writer, Journal& journal) {
    writer_ = &writer;
    journal_ = &journal;
    start_ = Clock::now();
    last_progress_ = start_;
    done_at_start_ = count(State::kDone);
    for (int r = 1; r < mpi_.size(); ++r) workers_[r] = false;  // false: not waiting for work yet
    Backoff backoff;
    bool stopping = false;
    Clock::time_point deadline;
    for (;;) {
      bool busy = poll_messages();
      if (!stopping && stop_requested()) {
        stopping = true;
        deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(config_.sweep.grace));
        spdlog::warn("signal {} received: no new tasks; {} running task(s) get {} s to finish", stop_signal(),
                     running_count(), config_.sweep.grace);
      }
      if (!stopping) busy = dispatch() || busy;
      if (mpi_.size() == 1 && !stopping) busy = run_one_locally() || busy;
      commit_if_due(busy);
      maybe_progress();
      const bool work_left = !stopping && count(State::kReady) + count(State::kWaiting) > 0;
      if (running_count() == 0 && !work_left) break;
      if (stopping && Clock::now() > deadline) {
        commit();
        spdlog::error("grace period of {} s over with {} task(s) still running; they will run again on resume",
                      config_.sweep.grace, running_count());
        MPI_Abort(MPI_COMM_WORLD, kExitInterrupted);
      }
      if (busy) backoff.reset();
      else backoff.wait();
    }
    commit();
    const int code = stopping ? kExitInterrupted : (count(State::kFailed) + count(State::kBlocked) > 0
                                                        ? kExitTasksFailed
                                                        : kExitOk);
    for (auto& [rank, waiting] : workers_) {
      // every worker is either waiting already or will ask once more
      if (!waiting) wait_for_request(rank);
      send_json({{"code", code}}, rank, kTagStop);
    }
    summary(code);
    return code;
  }

 private:
  int count(State st) const {
    const auto it = counts_.find(st);
    return it == counts_.end() ? 0 : it->second;
  }

  // Every state change of a task goes through here, keeping the counts and the
  // ready queue (highest priority first) in step.
  void set_state(std::size_t i, State st) {
    auto& s = states_[i];
    if (s.state == State::kReady) ready_.erase({s.priority, i});
    --counts_[s.state];
    s.state = st;
    ++counts_[st];
    if (st == State::kReady) ready_.insert({s.priority, i});
  }

  void reindex() {
    counts_.clear();
    ready_.clear();
    for (std::size_t i = 0; i < states_.size(); ++i) {
      ++counts_[states_[i].state];
      if (states_[i].state == State::kReady) ready_.insert({states_[i].priority, i});
    }
  }
  int running_count() const { return count(State::kRunning); }

  double remaining_cost() const {
    double c = 0;
    for (const auto& s : states_)
      if (s.state == State::kReady || s.state == State::kWaiting || s.state == State::kRunning) c += s.task->cost;
    return c;
  }

  void block_dependents(std::size_t i) {
    for (auto d : states_[i].dependents) {
      if (states_[d].state == State::kBlocked || states_[d].state == State::kDone) continue;
      set_state(d, State::kBlocked);
      block_dependents(d);
    }
  }

  // Handles every message that is waiting; true if there was any.
  bool poll_messages() {
    bool any = false;
    for (;;) {
      int found = 0;
      MPI_Message message;
      MPI_Status status;
      SENSECF_MPI_CHECK(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &found, &message, &status));
      if (!found) return any;
      any = true;
      const auto j = receive_json(&message, status);
      if (status.MPI_TAG == kTagResult) {
        JournalEntry e{store::task_record_from_json(j.at("record")), store::task_output_from_json(j.at("output"))};
        finish(std::move(e), status.MPI_SOURCE);
      }
      workers_[status.MPI_SOURCE] = true;
    }
  }

  void wait_for_request(int rank) {
    for (;;) {
      MPI_Message message;
      MPI_Status status;
      SENSECF_MPI_CHECK(MPI_Mprobe(rank, MPI_ANY_TAG, MPI_COMM_WORLD, &message, &status));
      const auto j = receive_json(&message, status);
      if (status.MPI_TAG == kTagReady) return;
      if (status.MPI_TAG == kTagResult) {  // cannot happen: nothing is running; keep it anyway
        finish({store::task_record_from_json(j.at("record")), store::task_output_from_json(j.at("output"))}, rank);
        return;
      }
    }
  }

  std::optional<std::size_t> best_ready() const {
    if (ready_.empty()) return std::nullopt;
    return ready_.begin()->second;
  }

  // Hands ready tasks to waiting workers; true if any was sent.
  bool dispatch() {
    bool any = false;
    for (;;) {
      std::vector<int> idle;
      for (const auto& [rank, waiting] : workers_)
        if (waiting) idle.push_back(rank);
      if (idle.empty()) return any;
      const auto best = best_ready();
      if (!best) return any;
      auto& s = states_[*best];
      const int n_workers = mpi_.size() - 1;
      const int ranks = std::min(s.task->ranks, std::max(1, n_workers));
      if (static_cast<int>(idle.size()) < ranks) return any;  // the gang waits for enough idle workers
      set_state(*best, State::kRunning);
      ++s.attempts;
      s.started = Clock::now();
      s.ranks.assign(idle.begin(), idle.begin() + ranks);
      s.results_pending = ranks;
      s.gang_result.reset();
      const nlohmann::json msg = {{"key", s.task->key}, {"attempt", s.attempts}, {"gang", s.ranks},
                                  {"gang_id", ++gang_counter_ % 30000}};
      for (int r : s.ranks) {
        workers_[r] = false;
        send_json(msg, r, kTagTask);
      }
      any = true;
    }
  }

  bool run_one_locally() {
    const auto best = best_ready();
    if (!best) return false;
    set_state(*best, State::kRunning);
    auto& s = states_[*best];
    ++s.attempts;
    s.started = Clock::now();
    s.ranks = {0};
    s.results_pending = 1;
    finish(execute(*s.task, s.attempts, env_, 0, mpi_.host()), 0);
    return true;
  }

  void finish(JournalEntry e, int rank) {
    const auto it = index_.find(e.record.key);
    if (it == index_.end()) throw Error("worker " + std::to_string(rank) + " reported unknown task " + e.record.key);
    auto& s = states_[it->second];
    // A gang's attempt is done when every member reported; it failed if any did.
    if (!s.gang_result || (e.record.status == "failed" && s.gang_result->record.status == "done") ||
        (e.record.status == s.gang_result->record.status && e.record.rank < s.gang_result->record.rank)) {
      s.gang_result = std::move(e);
    }
    if (--s.results_pending > 0) return;
    JournalEntry result = std::move(*s.gang_result);
    s.gang_result.reset();
    s.ranks.clear();
    if (result.record.status == "done") {
      set_state(it->second, State::kDone);
      for (auto d : s.dependents) {
        if (--states_[d].deps_left == 0 && states_[d].state == State::kWaiting) set_state(d, State::kReady);
      }
      observed_ += result.record.seconds;
      estimated_ += s.task->cost;
    } else {
      s.last_message = result.record.message;
      if (s.attempts < config_.sweep.max_attempts) {
        set_state(it->second, State::kReady);
        spdlog::info("{}: attempt {} of {} failed, retrying", s.task->label(), s.attempts, config_.sweep.max_attempts);
      } else {
        set_state(it->second, State::kFailed);
        spdlog::error("{}: failed after {} attempt(s): {}", s.task->label(), s.attempts, s.last_message);
        block_dependents(it->second);
      }
    }
    pending_.push_back(std::move(result));
  }

  // Group commit: journal (durable) first, then the HDF5 file.
  void commit_if_due(bool more_coming) {
    if (pending_.empty()) return;
    if (more_coming && pending_.size() < 256 && since(last_commit_) < 1.0) return;
    commit();
  }

  void commit() {
    last_commit_ = Clock::now();
    if (pending_.empty()) return;
    journal_->append(pending_);
    std::vector<std::pair<store::TaskRecord, store::TaskOutput>> batch;
    for (auto& e : pending_) batch.emplace_back(std::move(e.record), std::move(e.output));
    writer_->append(batch);
    writer_->flush();
    pending_.clear();
  }

  void maybe_progress() {
    if (since(last_progress_) < config_.sweep.progress) return;
    last_progress_ = Clock::now();
    const int done = count(State::kDone);
    std::string running;
    for (const auto& s : states_) {
      if (s.state != State::kRunning) continue;
      running += fmt::format("{}[r{} {} {}]", running.empty() ? "" : " ", s.ranks.empty() ? 0 : s.ranks.front(),
                             s.task->label(), format_duration(since(s.started)));
    }
    const double scale = estimated_ > 0 ? observed_ / estimated_ : 1.0;
    const double eta = remaining_cost() * scale / std::max(1, mpi_.size() - 1);
    spdlog::info("progress: {}/{} done, {} failed, {} running, elapsed {}, ETA {} {}", done, states_.size(),
                 count(State::kFailed), running_count(), format_duration(since(start_)),
                 done > done_at_start_ ? format_duration(eta) : std::string("?"), running);
  }

  void summary(int code) const {
    const int failed = count(State::kFailed), blocked = count(State::kBlocked);
    const double elapsed = since(start_);
    const int ran = count(State::kDone) - done_at_start_;
    spdlog::info("sweep {} in {}: {} of {} tasks done ({} in earlier runs; {:.1f} tasks/s), {} failed, {} skipped; "
                 "results in {}",
                 code == kExitInterrupted ? "interrupted" : "finished", format_duration(elapsed), count(State::kDone),
                 states_.size(), done_at_start_, elapsed > 0 ? ran / elapsed : 0.0, failed, blocked,
                 options_.results);
    for (const auto& s : states_) {
      if (s.state == State::kFailed)
        spdlog::error("failed: {} [{}] after {} attempt(s): {}", s.task->label(), s.task->key, s.attempts,
                      s.last_message);
    }
    if (blocked > 0) spdlog::error("{} task(s) were skipped because a task they depend on failed", blocked);
    if (code == kExitInterrupted)
      spdlog::warn("rerun the same command to resume (exit code {} asks the job script to requeue)", code);
    else if (failed > 0)
      spdlog::warn("rerun with --retry-failed to give the failed tasks {} more attempt(s)", config_.sweep.max_attempts);
  }

  const dist::MpiEnv& mpi_;
  const SweepConfig& config_;
  const RunOptions& options_;
  TaskEnv env_;
  std::vector<TaskState> states_;
  std::map<std::string, std::size_t> index_;
  std::map<int, bool> workers_;  // rank -> waiting for a task
  std::map<State, int> counts_;
  // ready tasks by priority, highest first (ties: plan order)
  std::set<std::pair<double, std::size_t>, std::function<bool(const std::pair<double, std::size_t>&,
                                                               const std::pair<double, std::size_t>&)>>
      ready_{[](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; }};
  std::vector<JournalEntry> pending_;
  store::ResultsWriter* writer_ = nullptr;
  Journal* journal_ = nullptr;
  Clock::time_point start_, last_progress_, last_commit_ = Clock::now();
  int done_at_start_ = 0;
  int gang_counter_ = 0;
  double observed_ = 0, estimated_ = 0;
};

store::Provenance provenance(const dist::MpiEnv& mpi, const RunOptions& options,
                             const std::vector<std::string>& hosts) {
  store::Provenance p;
  p.sensecf_version = version_string();
  p.git_sha = SENSECF_GIT_SHA;
  p.config = options.config_text;
  p.config_hash = options.config_hash;
  p.started = utc_now_iso8601();
  std::set<std::string> unique(hosts.begin(), hosts.end());
  for (const auto& h : unique) p.hosts += (p.hosts.empty() ? "" : ",") + h;
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) job = std::getenv("PBS_JOBID");
  p.slurm_job_id = job ? job : "";
  p.mpi_size = mpi.size();
  return p;
}

// A journal written with another configuration is not resumed.
void check_resume_config(const JournalHeader& stored, const RunOptions& options) {
  if (stored.config == options.config_canonical) return;
  const auto diffs = config_differences(stored.config, options.config_canonical);
  std::string list;
  for (const auto& d : diffs) list += "\n    " + d;
  throw UsageError("'" + options.results + "' holds a sweep with a different configuration; differing keys:" + list,
                   "rerun with the original configuration to resume, or pass a new --results file");
}

// Opens or creates the journal and results file; on resume the HDF5 file is
// rebuilt from the journal (the journal is what survived a crash intact).
std::pair<Journal, store::ResultsWriter> open_outputs(const RunOptions& options, const store::Provenance& prov,
                                                      std::vector<JournalEntry>* entries) {
  const std::string journal_path = options.results + ".journal";
  const JournalHeader header{options.config_canonical, options.config_hash, options.config_text};
  if (!fs::exists(journal_path)) {
    if (fs::exists(options.results))
      throw UsageError("'" + options.results + "' exists but its journal '" + journal_path + "' does not",
                       "the journal is what a sweep resumes from; pass a new --results path or restore the journal");
    Journal journal = Journal::create(journal_path, header);
    return {std::move(journal), store::ResultsWriter::create(options.results, prov)};
  }
  JournalHeader stored;
  Journal journal = Journal::open(journal_path, &stored, entries);
  check_resume_config(stored, options);
  const std::string tmp = options.results + ".rebuild";
  {
    auto writer = store::ResultsWriter::create(tmp, prov);
    std::vector<std::pair<store::TaskRecord, store::TaskOutput>> batch;
    for (const auto& e : *entries) batch.emplace_back(e.record, e.output);
    writer.append(batch);
    writer.flush();
  }
  fs::rename(tmp, options.results);
  spdlog::info("resuming: {} task attempt(s) from {} (results file rebuilt from it)", entries->size(), journal_path);
  return {std::move(journal), store::ResultsWriter::open(options.results)};
}

// Every rank's host, local rank and device binding, logged by rank 0.
void log_layout(const dist::MpiEnv& mpi, const std::vector<std::string>& hosts, const dist::DeviceBinding& binding) {
  constexpr int kLen = 256;
  std::vector<char> mine(kLen, 0), all(static_cast<std::size_t>(kLen) * static_cast<std::size_t>(mpi.size()), 0);
  const std::string line = fmt::format("local rank {}/{}: {}", mpi.local_rank(), mpi.local_size(), binding.describe());
  line.copy(mine.data(), kLen - 1);
  SENSECF_MPI_CHECK(MPI_Gather(mine.data(), kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, 0, MPI_COMM_WORLD));
  if (mpi.rank() != 0) return;
  std::string text;
  for (int r = 0; r < mpi.size(); ++r) {
    text += fmt::format("\n  rank {} on {} ({}): {}", r, hosts[static_cast<std::size_t>(r)],
                        r == 0 ? (mpi.size() > 1 ? "coordinator" : "coordinator and worker") : "worker",
                        all.data() + static_cast<std::size_t>(r) * kLen);
  }
  spdlog::info("sweep: {} rank(s) on {} host(s):{}", mpi.size(), std::set<std::string>(hosts.begin(), hosts.end()).size(),
               text);
}

}  // namespace

int run_sweep(const dist::MpiEnv& mpi, const SweepConfig& config, const RunOptions& options) {
  install_stop_handlers();
  const auto tasks = build_plan(config);
  std::map<std::string, const Task*> by_key;
  for (const auto& t : tasks) by_key[t.key] = &t;

  const auto binding = dist::choose_device(mpi.local_rank(), mpi.local_size());
  TaskEnv env;
  env.config = &config;
  env.workdir = options.workdir;
  env.threads = binding.cpu_threads;
  env.device = binding.device < 0 ? "cpu" : fmt::format("cuda:{}", binding.device);
  env.stop = &stop_flag();
  const auto hosts = mpi.all_hosts();
  log_layout(mpi, hosts, binding);

  // Rank 0 checks and prepares; the others wait for its verdict so that a
  // refused config ends every rank with the same exit code (rank 0 reports it).
  int verdict = kExitOk;
  std::exception_ptr failure;
  std::vector<JournalEntry> entries;
  std::optional<Journal> journal;
  std::optional<store::ResultsWriter> writer;
  if (mpi.rank() == 0) {
    try {
      const std::string journal_path = options.results + ".journal";
      if (!options.dry_run) {
        auto [j, w] = open_outputs(options, provenance(mpi, options, hosts), &entries);
        journal.emplace(std::move(j));
        writer.emplace(std::move(w));
        prepare_workdir(config, options.workdir);
      } else if (fs::exists(journal_path)) {
        JournalHeader stored;
        Journal::read(journal_path, &stored, &entries);
        check_resume_config(stored, options);
      }
    } catch (const UsageError&) {
      verdict = kExitUsage;
      failure = std::current_exception();
    } catch (const std::exception&) {
      verdict = kExitError;
      failure = std::current_exception();
    }
  }
  SENSECF_MPI_CHECK(MPI_Bcast(&verdict, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (failure) std::rethrow_exception(failure);
  if (verdict != kExitOk) return verdict;
  if (options.dry_run) {
    if (mpi.rank() == 0) {
      Coordinator c(mpi, config, options, tasks, env);
      c.replay(entries);
      c.print_plan(std::cout);
    }
    return kExitOk;
  }
  if (mpi.rank() != 0) return worker_loop(mpi, env, by_key);
  Coordinator c(mpi, config, options, tasks, env);
  c.replay(entries);
  c.print_plan(std::cerr);
  return c.run(*writer, *journal);
}

}  // namespace sensecf::sweep
