// The worker side of a sweep: one attempt -> one journal entry, and the pull
// loop of worker ranks. See worker.h.
#include "sensecf/sweep/worker.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <mutex>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/sweep/protocol.h"
#include "sensecf/sweep/task_io.h"

namespace sensecf::sweep {
namespace {

// The sink behind the per-task log files: while a task runs on this rank, what
// it logs goes to <workdir>/tasks/<key>/log.txt too. One task runs per rank
// at a time; open/close take the sink's lock, so a task's threads may log.
class TaskLogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void open(const std::string& path, const std::string& header) {
    std::lock_guard<std::mutex> lock(mutex_);
    close_locked();
    file_ = std::fopen(path.c_str(), "a");
    if (file_) std::fprintf(file_, "%s\n", header.c_str());
  }
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    close_locked();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!file_) return;
    spdlog::memory_buf_t text;
    formatter_->format(msg, text);
    std::fwrite(text.data(), 1, text.size(), file_);
  }
  void flush_() override {
    if (file_) std::fflush(file_);
  }

 private:
  void close_locked() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }
  std::FILE* file_ = nullptr;
};

std::shared_ptr<TaskLogSink>& task_log_sink() {
  static std::shared_ptr<TaskLogSink> sink;
  return sink;
}

// Opens the task's log for one attempt and closes it when the attempt ends.
class TaskLogScope {
 public:
  TaskLogScope(const Task& task, const TaskEnv& env, int attempt, int rank, const std::string& host) {
    if (!task_log_sink() || env.workdir.empty()) return;
    const std::string dir = task_dir(env.workdir, task.key);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return;  // the task itself will say what is wrong with the work directory
    task_log_sink()->open(dir + "/log.txt", fmt::format("== {} (key {}): attempt {} on rank {} ({}), device {}",
                                                        task.label(), task.key, attempt, rank, host, env.device));
  }
  ~TaskLogScope() {
    if (task_log_sink()) task_log_sink()->close();
  }
  TaskLogScope(const TaskLogScope&) = delete;
  TaskLogScope& operator=(const TaskLogScope&) = delete;
};

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The communicator of the ranks in `members` (collective over them), or
// MPI_COMM_NULL for a task this rank runs alone.
MPI_Comm create_gang(const std::vector<int>& members, int gang_id) {
  if (members.size() <= 1) return MPI_COMM_NULL;
  MPI_Group world_group, gang_group;
  MPI_Comm gang = MPI_COMM_NULL;
  SENSECF_MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world_group));
  SENSECF_MPI_CHECK(MPI_Group_incl(world_group, static_cast<int>(members.size()), members.data(), &gang_group));
  SENSECF_MPI_CHECK(MPI_Comm_create_group(MPI_COMM_WORLD, gang_group, gang_id, &gang));
  MPI_Group_free(&gang_group);
  MPI_Group_free(&world_group);
  return gang;
}

}  // namespace

void install_task_logs() {
  if (task_log_sink()) return;
  auto logger = spdlog::default_logger();
  const auto stderr_level = logger->level();
  const auto file_level = std::min(stderr_level, spdlog::level::info);
  for (auto& sink : logger->sinks()) sink->set_level(stderr_level);  // stderr keeps the rank's level
  auto sink = std::make_shared<TaskLogSink>();
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  sink->set_level(file_level);
  logger->sinks().push_back(sink);
  logger->set_level(file_level);
  task_log_sink() = sink;
}

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
  const auto start = std::chrono::steady_clock::now();
  const TaskLogScope log(task, env, attempt, rank, host);
  try {
    e.output = run_task(task, env);
    r.status = "done";
  } catch (const std::exception& ex) {
    r.status = "failed";
    r.message = ex.what();
    if (dynamic_cast<const PermanentError*>(&ex)) {
      e.retryable = false;
      r.message += " (not retried: another attempt would fail the same way)";
    }
    if (const auto* err = dynamic_cast<const Error*>(&ex); err && !err->hint().empty())
      r.message += " (hint: " + err->hint() + ")";
    e.output = {};
    spdlog::warn("task {} (attempt {}) failed: {}", r.label, attempt, r.message);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return e;
}

int worker_loop(const dist::MpiEnv& mpi, const TaskEnv& base, const std::map<std::string, const Task*>& by_key) {
  send_json(nlohmann::json::object(), 0, kTagReady);
  Backoff backoff;
  for (;;) {
    const auto message = try_receive(0);
    if (!message) {
      backoff.wait();
      continue;
    }
    backoff.reset();
    if (message->tag == kTagStop) return message->body.at("code").get<int>();
    const TaskOrder order = task_order_from_json(message->body);
    const auto it = by_key.find(order.key);
    if (it == by_key.end()) throw Error("coordinator sent unknown task " + order.key);
    TaskEnv env = base;
    MPI_Comm gang = create_gang(order.gang, order.gang_id);
    if (gang != MPI_COMM_NULL) env.gang = gang;
    const auto entry = execute(*it->second, order.attempt, env, mpi.rank(), mpi.host());
    if (gang != MPI_COMM_NULL) MPI_Comm_free(&gang);
    send_json(result_to_json(entry), 0, kTagResult);
  }
}

}  // namespace sensecf::sweep
