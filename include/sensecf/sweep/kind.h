// A task kind: one unit that knows which tasks of its kind a sweep needs and
// how to run one. Each kind lives in its own file under src/sweep/kinds/ and is
// listed once in src/sweep/kinds/registry.cpp; the registry order is the plan
// order, so a kind comes after the kinds whose artefacts it reads.
//
// Adding a kind (docs/architecture.md, "How to add a task kind"): its file
// (typed parameters, expand, run), one line in the registry, and the report
// section that shows its rows.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/store/results.h"
#include "sensecf/sweep/plan.h"
#include "sensecf/sweep/tasks.h"

namespace sensecf::sweep {

// Collects the tasks of a plan in a topological order: every input must be
// added before the task that reads it.
class PlanBuilder {
 public:
  // Adds a task; `inputs` name the tasks (by key) whose artefacts it reads.
  const Task& add(const std::string& kind, nlohmann::json params,
                  std::vector<std::pair<std::string, std::string>> inputs, double cost, int ranks = 1);
  bool contains(const std::string& key) const { return index_.count(key) > 0; }
  // The keys of the tasks of one kind added so far, in plan order.
  std::vector<std::string> keys_of(const std::string& kind) const {
    std::vector<std::string> keys;
    for (const auto& t : tasks_)
      if (t.kind == kind) keys.push_back(t.key);
    return keys;
  }
  std::vector<Task> take() { return std::move(tasks_); }

 private:
  std::vector<Task> tasks_;
  std::map<std::string, std::size_t> index_;
};

class TaskKind {
 public:
  virtual ~TaskKind() = default;
  // The kind's name in the results file (core/vocabulary.h).
  virtual const char* name() const = 0;
  // The plan the kind belongs to: "study" or "probe".
  virtual const char* plan() const { return "study"; }
  // Adds this kind's tasks for `config`; the tasks they read are in `plan` already.
  virtual void expand(const SweepConfig& config, PlanBuilder& plan) const = 0;
  // Runs one task; everything for the results file is returned, artefacts for
  // other tasks go to task_dir(env.workdir, task.key) through task_io.h.
  virtual store::TaskOutput run(const Task& task, const TaskEnv& env) const = 0;
};

// Every kind, in plan order.
const std::vector<const TaskKind*>& task_kinds();
// The kind called `name`; throws (naming the known kinds) when there is none.
const TaskKind& task_kind(const std::string& name);

}  // namespace sensecf::sweep
