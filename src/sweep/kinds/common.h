// What several study kinds share: the sweep's data set, the NN options of a
// task, result rows. Private to src/sweep/kinds/.
#pragma once

#include <string>
#include <vector>

#include "params.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/clf/metrics.h"
#include "sensecf/data/dataset.h"
#include "sensecf/store/results.h"
#include "sensecf/sweep/task_io.h"
#include "sensecf/sweep/tasks.h"

namespace sensecf::sweep::kinds {

// The data options the tasks read: data.source = synth means the cohort that
// prepare_workdir wrote to <workdir>/cohort.csv.
data::DataOptions sweep_data_options(const SweepConfig& config, const std::string& workdir);
// The sweep's data set, from the worker's cache.
const data::Dataset& sweep_dataset(const TaskEnv& env);
// A copy with bounds learned from this split's training rows (as train-clf does).
data::Dataset dataset_for(const SplitRows& rows, const TaskEnv& env);

std::vector<int> labels(const data::Dataset& d, const std::vector<std::size_t>& rows);
// The classes a scenario makes scarce: positive {1}, negative {0}, dual {0, 1}.
std::vector<int> scarce_classes(const std::string& scenario);

// [clf] with model nn, the task's seed and the worker's threads.
clf::ClfOptions nn_options(int seed, const TaskEnv& env);

// A /metrics/clf row of `task` (method, scenario, fraction, ratio from its params).
store::ClfMetricRow clf_row(const Task& task, const std::string& model, const clf::Metrics& m, std::size_t n_train);
// The model's training curve as /metrics/train rows.
void add_curve(const Task& task, const clf::Classifier& model, store::TaskOutput& out);

}  // namespace sensecf::sweep::kinds
