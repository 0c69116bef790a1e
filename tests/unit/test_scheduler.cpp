// The sweep's scheduler without MPI: small hand-built task DAGs driven through
// assign()/finish() the way the coordinator drives them (the coordinator loop
// itself is tested under mpirun in tests/mpi/test_sweep_runner.py).
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/sweep/journal.h"
#include "sensecf/sweep/plan.h"
#include "sensecf/sweep/protocol.h"
#include "sensecf/sweep/scheduler.h"
#include "sensecf/sweep/signals.h"
#include "test_util.h"

namespace sensecf::sweep {
namespace {

Task task(const std::string& key, std::vector<std::string> deps = {}, double cost = 1, int ranks = 1) {
  static int index = 0;
  Task t;
  t.key = key;
  t.kind = "probe";
  t.params = {{"index", index++}};
  t.deps = std::move(deps);
  t.cost = cost;
  t.ranks = ranks;
  return t;
}

SweepOptions options(int max_attempts = 3) {
  SweepOptions o;
  o.plan = "probe";
  o.max_attempts = max_attempts;
  return o;
}

// What a worker reports for `key`.
JournalEntry report(const std::string& key, int attempt, int rank, bool ok, double seconds = 1,
                    const std::string& message = "") {
  JournalEntry e;
  e.record.key = key;
  e.record.kind = "probe";
  e.record.status = ok ? "done" : "failed";
  e.record.message = ok ? "" : (message.empty() ? "failed by request" : message);
  e.record.attempt = attempt;
  e.record.rank = rank;
  e.record.seconds = seconds;
  return e;
}

// Runs everything on one worker, each attempt succeeding; returns the keys in
// the order they were handed out.
std::vector<std::string> run_in_order(Scheduler& s) {
  std::vector<std::string> order;
  while (const auto a = s.assign({1})) {
    order.push_back(a->task->key);
    s.finish(report(a->task->key, a->attempt, 1, true), 1);
  }
  return order;
}

TEST(Scheduler, LongestRemainingPathFirstTiesInPlanOrder) {
  // priorities (cost down to the end): d 1, b 5, a 1 + 10, c 10, e 1
  const std::vector<Task> tasks = {task("d"), task("b", {}, 5), task("a"), task("c", {"a"}, 10), task("e")};
  Scheduler s(tasks, options(), 1);
  EXPECT_EQ(run_in_order(s), (std::vector<std::string>{"a", "c", "b", "d", "e"}));
  EXPECT_EQ(s.count(TaskState::kDone), 5);
  EXPECT_FALSE(s.work_left());
  EXPECT_EQ(s.exit_code(false), kExitOk);
}

TEST(Scheduler, PriorityIsTheLongestPathNotTheSumOfDependents) {
  // a feeds two cheap tasks (path 1 + 2), b one expensive one (path 1 + 3)
  const std::vector<Task> tasks = {task("a"), task("b"), task("a1", {"a"}, 2), task("a2", {"a"}, 2),
                                   task("b1", {"b"}, 3)};
  Scheduler s(tasks, options(), 1);
  const auto first = s.assign({1});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->task->key, "b");
}

TEST(Scheduler, DependentsBecomeReadyOnlyWhenEveryDependencyIsDone) {
  const std::vector<Task> tasks = {task("a"), task("b"), task("c", {"a", "b"})};
  Scheduler s(tasks, options(), 2);
  EXPECT_EQ(s.state("c"), TaskState::kWaiting);
  const auto a = s.assign({1, 2});
  const auto b = s.assign({2});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->task->key, "a");
  EXPECT_EQ(a->ranks, std::vector<int>{1});
  EXPECT_EQ(b->task->key, "b");
  EXPECT_EQ(s.running_count(), 2);

  EXPECT_EQ(s.finish(report("a", 1, 1, true), 1).outcome, Outcome::kDone);
  EXPECT_EQ(s.state("c"), TaskState::kWaiting);
  EXPECT_FALSE(s.assign({1})) << "c must wait for b";

  EXPECT_EQ(s.finish(report("b", 1, 2, true), 2).outcome, Outcome::kDone);
  EXPECT_EQ(s.state("c"), TaskState::kReady);
  const auto c = s.assign({1});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->task->key, "c");
}

TEST(Scheduler, FailedAttemptsAreRetriedThenTheTaskFailsAndBlocksItsDependents) {
  const std::vector<Task> tasks = {task("a"), task("b", {"a"}), task("c", {"b"}), task("d", {}, 0.5)};
  Scheduler s(tasks, options(3), 1);
  std::vector<Outcome> outcomes;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const auto a = s.assign({1});
    ASSERT_TRUE(a);
    ASSERT_EQ(a->task->key, "a") << "a outranks d until it has failed for good";
    EXPECT_EQ(a->attempt, attempt);
    const auto finished = s.finish(report("a", attempt, 1, false, 1, "boom " + std::to_string(attempt)), 1);
    ASSERT_TRUE(finished.entry);
    EXPECT_EQ(finished.entry->record.attempt, attempt);
    EXPECT_EQ(finished.entry->record.status, "failed");
    outcomes.push_back(finished.outcome);
  }
  EXPECT_EQ(outcomes, (std::vector<Outcome>{Outcome::kRetrying, Outcome::kRetrying, Outcome::kFailed}));
  EXPECT_EQ(s.state("a"), TaskState::kFailed);
  EXPECT_EQ(s.attempts("a"), 3);
  EXPECT_EQ(s.state("b"), TaskState::kBlocked);
  EXPECT_EQ(s.state("c"), TaskState::kBlocked);  // transitively
  EXPECT_EQ(s.state("d"), TaskState::kReady);    // the sweep goes on
  EXPECT_EQ(s.count(TaskState::kBlocked), 2);
  EXPECT_EQ(run_in_order(s), std::vector<std::string>{"d"});
  EXPECT_EQ(s.exit_code(false), kExitTasksFailed);
  EXPECT_EQ(s.exit_code(true), kExitInterrupted);
}

TEST(Scheduler, APermanentFailureIsNotRetried) {
  // A refused API key (PermanentError): another attempt would fail the same way.
  const std::vector<Task> tasks = {task("a"), task("b", {"a"})};
  Scheduler s(tasks, options(3), 1);
  const auto a = s.assign({1});
  ASSERT_TRUE(a);
  auto e = report("a", a->attempt, 1, false, 1, "HTTP 401");
  e.retryable = false;
  EXPECT_EQ(s.finish(e, 1).outcome, Outcome::kFailed);
  EXPECT_EQ(s.attempts("a"), 1);
  EXPECT_EQ(s.state("b"), TaskState::kBlocked);
  // The flag travels from the worker in the result message.
  EXPECT_FALSE(result_from_json(result_to_json(e)).retryable);
  EXPECT_TRUE(result_from_json(result_to_json(report("a", 1, 1, false))).retryable);
}

TEST(Scheduler, ASuccessfulRetryUnblocksNothingItShouldNot) {
  const std::vector<Task> tasks = {task("a"), task("b", {"a"})};
  Scheduler s(tasks, options(3), 1);
  auto a = s.assign({1});
  EXPECT_EQ(s.finish(report("a", a->attempt, 1, false), 1).outcome, Outcome::kRetrying);
  EXPECT_EQ(s.state("b"), TaskState::kWaiting);
  a = s.assign({1});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->attempt, 2);
  EXPECT_EQ(s.finish(report("a", a->attempt, 1, true), 1).outcome, Outcome::kDone);
  EXPECT_EQ(s.state("b"), TaskState::kReady);
  EXPECT_EQ(s.exit_code(false), kExitOk);
}

TEST(Scheduler, AGangWaitsForEnoughIdleWorkersAndHoldsTheQueue) {
  const std::vector<Task> tasks = {task("gang", {}, 10, 2), task("solo")};
  Scheduler s(tasks, options(), 3);
  EXPECT_FALSE(s.assign({}));
  EXPECT_FALSE(s.assign({2})) << "one idle worker: the two-rank task waits (and keeps its place)";
  EXPECT_EQ(s.state("gang"), TaskState::kReady);
  EXPECT_EQ(s.state("solo"), TaskState::kReady);
  const auto g = s.assign({1, 3});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->task->key, "gang");
  EXPECT_EQ(g->ranks, (std::vector<int>{1, 3}));
  const auto solo = s.assign({2});
  ASSERT_TRUE(solo);
  EXPECT_EQ(solo->task->key, "solo");
}

TEST(Scheduler, AGangAttemptIsDoneWhenEveryMemberReportedAndFailedIfAnyFailed) {
  const std::vector<Task> tasks = {task("gang", {}, 1, 2)};
  Scheduler s(tasks, options(2), 2);
  auto g = s.assign({1, 2});
  ASSERT_TRUE(g);
  auto first = s.finish(report("gang", 1, 2, true), 2);
  EXPECT_EQ(first.outcome, Outcome::kGangPending);
  EXPECT_FALSE(first.entry);
  EXPECT_EQ(s.state("gang"), TaskState::kRunning);
  auto last = s.finish(report("gang", 1, 1, false, 1, "rank 1 ran out of memory"), 1);
  EXPECT_EQ(last.outcome, Outcome::kRetrying);
  ASSERT_TRUE(last.entry);
  EXPECT_EQ(last.entry->record.status, "failed");
  EXPECT_EQ(last.entry->record.rank, 1);
  EXPECT_EQ(last.entry->record.message, "rank 1 ran out of memory");

  // second attempt: both done; the record kept is the lowest rank's
  g = s.assign({1, 2});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->attempt, 2);
  EXPECT_EQ(s.finish(report("gang", 2, 1, true, 3), 1).outcome, Outcome::kGangPending);
  last = s.finish(report("gang", 2, 2, true, 4), 2);
  EXPECT_EQ(last.outcome, Outcome::kDone);
  ASSERT_TRUE(last.entry);
  EXPECT_EQ(last.entry->record.rank, 1);
  EXPECT_EQ(last.entry->record.seconds, 3);
}

TEST(Scheduler, AGangLargerThanTheJobRunsOnEveryWorker) {
  const std::vector<Task> tasks = {task("big", {}, 1, 5)};
  Scheduler s(tasks, options(), 2);
  const auto g = s.assign({1, 2});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->ranks, (std::vector<int>{1, 2}));
}

// Journal of an earlier run: a done; c failed every attempt; e failed once.
std::vector<JournalEntry> earlier_run() {
  return {report("a", 1, 1, true), report("c", 1, 1, false), report("e", 1, 2, false, 1, "flaky"),
          report("c", 2, 1, false), report("c", 3, 2, false, 1, "c's last words")};
}

TEST(Scheduler, ReplaySkipsDoneTasksAndFailsExhaustedOnes) {
  const std::vector<Task> tasks = {task("a"), task("b", {"a"}, 2), task("c"), task("d", {"c"}), task("e", {}, 4)};
  Scheduler s(tasks, options(3), 1);
  s.replay(earlier_run(), false);
  EXPECT_EQ(s.state("a"), TaskState::kDone);
  EXPECT_EQ(s.state("b"), TaskState::kReady);
  EXPECT_EQ(s.state("c"), TaskState::kFailed);
  EXPECT_EQ(s.state("d"), TaskState::kBlocked);
  EXPECT_EQ(s.state("e"), TaskState::kReady);
  EXPECT_EQ(s.count(TaskState::kReady), 2);
  EXPECT_DOUBLE_EQ(s.remaining_cost(), 2 + 4);
  // The earlier run's measured time (a: 1 s for cost 1) calibrates the ETA from the start.
  ASSERT_TRUE(s.eta_seconds());
  EXPECT_DOUBLE_EQ(*s.eta_seconds(), (2 + 4) * 1.0 / 1);

  std::vector<std::pair<std::string, int>> handed_out;
  while (const auto a = s.assign({1})) {
    handed_out.emplace_back(a->task->key, a->attempt);
    s.finish(report(a->task->key, a->attempt, 1, true), 1);
  }
  // e continues with attempt 2; a is not run again, c and d not at all
  EXPECT_EQ(handed_out, (std::vector<std::pair<std::string, int>>{{"e", 2}, {"b", 1}}));
  EXPECT_EQ(s.exit_code(false), kExitTasksFailed);
}

TEST(Scheduler, RetryFailedGivesExhaustedTasksNewAttempts) {
  const std::vector<Task> tasks = {task("a"), task("b", {"a"}, 2), task("c"), task("d", {"c"}), task("e", {}, 4)};
  Scheduler s(tasks, options(3), 1);
  s.replay(earlier_run(), true);
  EXPECT_EQ(s.state("c"), TaskState::kReady);
  EXPECT_EQ(s.attempts("c"), 0);
  EXPECT_EQ(s.state("d"), TaskState::kWaiting);
  EXPECT_EQ(s.attempts("e"), 1) << "a task with attempts left keeps its count";
  EXPECT_EQ(s.count(TaskState::kFailed), 0);
  std::vector<std::pair<std::string, int>> handed_out;
  while (const auto a = s.assign({1})) {
    handed_out.emplace_back(a->task->key, a->attempt);
    s.finish(report(a->task->key, a->attempt, 1, true), 1);
  }
  // c starts again from attempt 1, and its dependent d runs after it
  EXPECT_EQ(handed_out, (std::vector<std::pair<std::string, int>>{{"e", 2}, {"b", 1}, {"c", 1}, {"d", 1}}));
  EXPECT_EQ(s.exit_code(false), kExitOk);
}

TEST(Scheduler, CountsRemainingCostAndEta) {
  const std::vector<Task> tasks = {task("a", {}, 2), task("b", {"a"}, 3), task("c", {}, 4)};
  Scheduler s(tasks, options(), 2);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.count(TaskState::kReady), 2);
  EXPECT_EQ(s.count(TaskState::kWaiting), 1);
  EXPECT_DOUBLE_EQ(s.remaining_cost(), 9);
  const auto a = s.assign({1});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->task->key, "a");  // path 2 + 3 beats 4
  EXPECT_EQ(s.running_count(), 1);
  EXPECT_DOUBLE_EQ(s.remaining_cost(), 9) << "running tasks are still to finish";
  // a took twice its estimate: the rest (b 3 + c 4) is expected to as well, on 2 workers
  s.finish(report("a", 1, 1, true, 4), 1);
  EXPECT_EQ(s.count(TaskState::kDone), 1);
  EXPECT_EQ(s.running_count(), 0);
  EXPECT_DOUBLE_EQ(s.remaining_cost(), 7);
  ASSERT_TRUE(s.eta_seconds());
  EXPECT_DOUBLE_EQ(s.cost_scale(), 2.0);
  EXPECT_DOUBLE_EQ(*s.eta_seconds(), 7 * 2.0 / 2);
  EXPECT_NE(s.progress_line().find("progress: 1/3 done, 0 failed, 0 running"), std::string::npos)
      << s.progress_line();
}

TEST(Scheduler, PlanTableCountsEveryKind) {
  std::vector<Task> tasks = {task("a", {}, 60), task("b", {"a"}, 30), task("c")};
  tasks[0].kind = "prepare";
  Scheduler s(tasks, options(1), 3);
  s.replay({report("c", 1, 1, false)}, false);
  std::ostringstream out;
  s.print_plan(out);
  EXPECT_EQ(out.str(),
            "plan: 3 tasks (probe plan)\n"
            "  kind         tasks    done  failed   blocked  to run\n"
            "  prepare          1       0       0         0       1\n"
            "  probe            2       0       1         0       1\n"
            "would run 2 tasks on 3 worker rank(s): estimated 1m30s of work, about 30s wall time (from the tasks' "
            "cost estimates; the progress ETA refines it with measured times)\n");
}

TEST(Scheduler, RefusesReportsOfUnknownOrIdleTasks) {
  const std::vector<Task> tasks = {task("a"), task("b")};
  Scheduler s(tasks, options(), 1);
  EXPECT_THROW_WITH(s.finish(report("zz", 1, 1, true), 1), Error, "worker 1 reported unknown task zz");
  EXPECT_THROW_WITH(s.finish(report("b", 1, 1, true), 1), Error, "which is not running");
}

TEST(Scheduler, RefusesAPlanThatListsATaskBeforeItsDependency) {
  const std::vector<Task> tasks = {task("b", {"a"}), task("a")};
  EXPECT_THROW_WITH(Scheduler s(tasks, options(), 1), Error, "depends on a, which is not listed before it");
}

}  // namespace
}  // namespace sensecf::sweep
