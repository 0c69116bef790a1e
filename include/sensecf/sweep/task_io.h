// What tasks hand to each other, and what a worker keeps between tasks.
//
// Artefacts live under <workdir>/tasks/<key>/ (a shared file system on a
// cluster); a task writes only its own directory and reads its named inputs'
// (Task::input). Each artefact has one writer and one reader here, so no kind
// knows another kind's file layout:
//
//   rows.json  prepare     SplitRows: train / kept / removed / test row indices
//   clf/       train_clf   the trained-model artefact (clf/artefact.h), the same
//                          contract `sensecf train-clf` writes
//   cfs.json   generate    a CF set (store::CfArrays), exact doubles, NaN = none
//
// WorkerCache: data sets and trained classifiers, loaded once per worker
// process and shared by the tasks it runs (an 8B model must not be reloaded
// per task; the LLM stage adds its models here).
#pragma once

#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sensecf/clf/classifier.h"
#include "sensecf/data/csv.h"
#include "sensecf/store/results.h"
#include "sensecf/sweep/plan.h"

namespace sensecf::sweep {

// The directory of one task's artefacts (created on demand by the task).
std::string task_dir(const std::string& workdir, const std::string& key);
// The directory of the task's named input (Task::input).
std::string input_dir(const Task& task, const std::string& workdir, const char* input);

// The rows of one (seed, scenario): the patient split and the scenario's cut.
struct SplitRows {
  std::vector<std::size_t> train, kept, removed, test;
};
void write_split_rows(const std::string& dir, const SplitRows& rows);
SplitRows read_split_rows(const std::string& dir, const Task& reader);

void write_cf_set(const std::string& dir, const store::CfArrays& cfs);
store::CfArrays read_cf_set(const std::string& dir, const Task& reader);

// Writes `text` to path.tmp and renames it: readers never see half a file.
void write_text_atomically(const std::string& path, const std::string& text);

class WorkerCache {
 public:
  // The process's cache (a worker is one process).
  static WorkerCache& instance();

  // The data set of a CSV source, read once per path.
  const data::Dataset& dataset(const data::DataOptions& options);
  // The trained classifier in `dir`, loaded once; the least recently used of
  // more than `capacity` models is dropped.
  std::shared_ptr<const clf::TrainedModel> model(const std::string& dir);

  void set_model_capacity(std::size_t capacity) { model_capacity_ = capacity; }
  std::size_t model_loads() const { return model_loads_; }

 private:
  std::mutex mutex_;
  std::map<std::string, data::Dataset> datasets_;
  std::list<std::pair<std::string, std::shared_ptr<const clf::TrainedModel>>> models_;  // most recent first
  std::size_t model_capacity_ = 16;
  std::size_t model_loads_ = 0;
};

}  // namespace sensecf::sweep
