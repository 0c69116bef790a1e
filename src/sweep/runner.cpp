// The sweep runner's glue: the coordinator loop of rank 0 (MPI polling,
// dispatch through the Scheduler, group commit to journal + HDF5, the grace
// period after a stop signal), opening or resuming the outputs, provenance,
// and run_sweep, which starts every rank on its side. See runner.h.
#include "sensecf/sweep/runner.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "sensecf/core/build_info.h"
#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/core/log.h"
#include "sensecf/core/provenance.h"
#include "sensecf/core/strings.h"
#include "sensecf/dist/device.h"
#include "sensecf/store/results.h"
#include "sensecf/sweep/journal.h"
#include "sensecf/sweep/protocol.h"
#include "sensecf/sweep/task_io.h"
#include "sensecf/sweep/scheduler.h"
#include "sensecf/sweep/signals.h"
#include "sensecf/sweep/tasks.h"
#include "sensecf/sweep/worker.h"

namespace sensecf::sweep {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Rank 0 of a running sweep: moves messages between the workers and the
// scheduler and commits what finished. With one rank it also runs the tasks.
class Coordinator {
 public:
  Coordinator(const dist::MpiEnv& mpi, const SweepOptions& sweep, const TaskEnv& env, Scheduler& scheduler,
              store::ResultsWriter& writer, Journal& journal, std::string results)
      : mpi_(mpi), sweep_(sweep), env_(env), scheduler_(scheduler), writer_(writer), journal_(journal),
        results_(std::move(results)) {
    for (int r = 1; r < mpi_.size(); ++r) workers_[r] = false;  // false: not waiting for work yet
  }

  // Until every task is finished or a stop signal's grace period is over;
  // then stops every worker and returns the exit code they were sent.
  int run() {
    last_progress_ = Clock::now();
    Backoff backoff;
    bool stopping = false;
    Clock::time_point deadline;
    for (;;) {
      bool busy = poll_messages();
      if (!stopping && stop_requested()) {
        stopping = true;
        deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(sweep_.grace));
        spdlog::warn("signal {} received: no new tasks; {} running task(s) get {} s to finish", stop_signal(),
                     scheduler_.running_count(), sweep_.grace);
      }
      if (!stopping) busy = dispatch() || busy;
      if (mpi_.size() == 1 && !stopping) busy = run_one_locally() || busy;
      commit_if_due(busy);
      maybe_progress();
      const bool work_left = !stopping && scheduler_.work_left();
      if (scheduler_.running_count() == 0 && !work_left) break;
      if (stopping && Clock::now() > deadline) {
        commit();
        spdlog::error("grace period of {} s over with {} task(s) still running; they will run again on resume",
                      sweep_.grace, scheduler_.running_count());
        MPI_Abort(MPI_COMM_WORLD, kExitInterrupted);
      }
      if (busy) backoff.reset();
      else backoff.wait();
    }
    commit();
    const int code = scheduler_.exit_code(stopping);
    write_status(code == kExitInterrupted ? "interrupted" : "finished", /*force=*/true);
    for (auto& [rank, waiting] : workers_) {
      // every worker is either waiting already or will ask once more
      if (!waiting) wait_for_request(rank);
      send_json({{"code", code}}, rank, kTagStop);
    }
    scheduler_.log_summary(code, results_);
    log_shortfalls();
    return code;
  }

 private:
  // Handles every message that is waiting; true if there was any.
  bool poll_messages() {
    bool any = false;
    while (const auto message = try_receive(MPI_ANY_SOURCE)) {
      any = true;
      if (message->tag == kTagResult) on_result(result_from_json(message->body), message->source);
      workers_[message->source] = true;
    }
    return any;
  }

  void wait_for_request(int rank) {
    for (;;) {
      const Message message = receive(rank);
      if (message.tag == kTagReady) return;
      if (message.tag == kTagResult) {  // cannot happen: nothing is running (the scheduler refuses it)
        on_result(result_from_json(message.body), rank);
        return;
      }
    }
  }

  void on_result(JournalEntry entry, int rank) {
    auto finished = scheduler_.finish(std::move(entry), rank);
    if (!finished.entry) return;
    for (const auto& row : finished.entry->output.clf) {
      if (row.n_added >= row.n_wanted) continue;
      auto& s = shortfalls_[row.method];
      ++s.tasks;
      s.added += row.n_added;
      s.wanted += row.n_wanted;
    }
    pending_.push_back(std::move(*finished.entry));
  }

  // Augment tasks that found fewer valid CFs than their ratio asks: one line
  // for the whole sweep instead of a warning per task (each task's log has its
  // own line; Table IV's "CFs added" column has the counts).
  void log_shortfalls() const {
    if (shortfalls_.empty()) return;
    int tasks = 0;
    std::vector<std::string> parts;
    for (const auto& [method, s] : shortfalls_) {
      tasks += s.tasks;
      parts.push_back(fmt::format("{} {} ({} of {} CFs)", method, s.tasks, s.added, s.wanted));
    }
    spdlog::warn("{} augment task(s) found fewer valid CFs than their ratio asks, by method: {}; Table IV's "
                 "'CFs added' column shows the counts",
                 tasks, join(parts, ", "));
  }

  struct Shortfall {
    int tasks = 0;
    long long added = 0, wanted = 0;
  };
  std::map<std::string, Shortfall> shortfalls_;  // by CF method, this run's augment tasks

  std::vector<int> idle_workers() const {
    std::vector<int> idle;
    for (const auto& [rank, waiting] : workers_)
      if (waiting) idle.push_back(rank);
    return idle;
  }

  // Hands ready tasks to waiting workers; true if any was sent.
  bool dispatch() {
    bool any = false;
    while (const auto assignment = scheduler_.assign(idle_workers())) {
      const TaskOrder order{assignment->task->key, assignment->attempt, assignment->ranks, ++gang_counter_ % 30000};
      const nlohmann::json message = to_json(order);
      for (int r : assignment->ranks) {
        workers_[r] = false;
        send_json(message, r, kTagTask);
      }
      any = true;
    }
    return any;
  }

  bool run_one_locally() {
    const auto assignment = scheduler_.assign({0});
    if (!assignment) return false;
    on_result(execute(*assignment->task, assignment->attempt, env_, 0, mpi_.host()), 0);
    return true;
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
    journal_.append(pending_);
    std::vector<std::pair<store::TaskRecord, store::TaskOutput>> batch;
    for (auto& e : pending_) batch.emplace_back(std::move(e.record), std::move(e.output));
    writer_.append(batch);
    writer_.flush();
    pending_.clear();
  }

  // <results>.status.json for `sensecf status`, every 2 s and at the end,
  // written to a temporary file and renamed (a reader sees a whole one).
  void write_status(const std::string& state, bool force = false) {
    if (!force && since(last_status_) < 2.0) return;
    last_status_ = Clock::now();
    try {
      auto status = scheduler_.status_json(state);
      status["workdir"] = env_.workdir;  // per-task logs: <workdir>/tasks/<key>/log.txt
      write_text_atomically(results_ + ".status.json", status.dump(1) + "\n");
    } catch (const std::exception& e) {
      spdlog::warn("status file: {} (the sweep goes on; `sensecf status` falls back to the journal)", e.what());
    }
  }

  void maybe_progress() {
    write_status("running");
    if (since(last_progress_) < sweep_.progress) return;
    last_progress_ = Clock::now();
    spdlog::info("{}", scheduler_.progress_line());
  }

  const dist::MpiEnv& mpi_;
  const SweepOptions& sweep_;
  TaskEnv env_;
  Scheduler& scheduler_;
  store::ResultsWriter& writer_;
  Journal& journal_;
  std::string results_;
  std::map<int, bool> workers_;  // rank -> waiting for a task
  std::vector<JournalEntry> pending_;
  Clock::time_point last_progress_, last_commit_ = Clock::now(), last_status_;
  int gang_counter_ = 0;
};

store::Provenance provenance(const dist::MpiEnv& mpi, const RunOptions& options,
                             const std::vector<std::string>& hosts) {
  store::Provenance p;
  p.sensecf_version = version_string();
  p.git_sha = SENSECF_GIT_SHA;
  p.config = options.identity.config_text;
  p.config_hash = options.identity.config_hash;
  p.started = utc_now_iso8601();
  std::set<std::string> unique(hosts.begin(), hosts.end());
  for (const auto& h : unique) p.hosts += (p.hosts.empty() ? "" : ",") + h;
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) job = std::getenv("PBS_JOBID");
  p.slurm_job_id = job ? job : "";
  p.mpi_size = mpi.size();
  return p;
}

// Opens or creates the journal and results file; on resume the HDF5 file is
// rebuilt from the journal (the journal is what survived a crash intact).
std::pair<Journal, store::ResultsWriter> open_outputs(const RunOptions& options, const store::Provenance& prov,
                                                      std::vector<JournalEntry>* entries) {
  const std::string journal_path = options.results + ".journal";
  const JournalHeader header{options.identity.config_canonical, options.identity.config_hash,
                             options.identity.config_text};
  if (!fs::exists(journal_path)) {
    if (fs::exists(options.results))
      throw UsageError("'" + options.results + "' exists but its journal '" + journal_path + "' does not",
                       "the journal is what a sweep resumes from; pass a new --results path or restore the journal");
    Journal journal = Journal::create(journal_path, header);
    return {std::move(journal), store::ResultsWriter::create(options.results, prov)};
  }
  JournalHeader stored;
  Journal journal = Journal::open(journal_path, &stored, entries);
  if (check_same_config(stored.config, options.identity, options.results) == ConfigChange::kGrown)
    journal.replace_header(header);  // the grown configuration is the study's from now on
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
  if (!options.dry_run) install_task_logs();
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
        check_same_config(stored.config, options.identity, options.results);
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
  if (mpi.rank() != 0) return options.dry_run ? kExitOk : worker_loop(mpi, env, by_key);
  Scheduler scheduler(tasks, config.sweep, mpi.size() - 1);
  scheduler.replay(entries, options.retry_failed);
  if (options.dry_run) {
    scheduler.print_plan(std::cout);
    return kExitOk;
  }
  scheduler.print_plan(std::cerr);
  return Coordinator(mpi, config.sweep, env, scheduler, *writer, *journal, options.results).run();
}

}  // namespace sensecf::sweep
