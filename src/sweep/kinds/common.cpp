// Helpers shared by the study kinds (see common.h).
#include "common.h"

#include <algorithm>
#include <cstdint>

#include "sensecf/data/source.h"
#include "sensecf/ingest/aireadi.h"

namespace sensecf::sweep::kinds {

data::DataOptions sweep_data_options(const SweepConfig& config, const std::string& workdir) {
  data::DataOptions o = config.data;
  if (data::parse_source(o.source) == data::Source::kSynth) {
    o.source = "csv";
    o.path = workdir + "/cohort.csv";
  } else if (data::parse_source(o.source) == data::Source::kAiReadi) {
    // The features task's table. Without controlled-access demographics its
    // gender column is one placeholder value: left out.
    o.source = "csv";
    o.path = workdir + "/features.csv";
    if (!ingest::table_has_gender(o.path) && std::find(o.drop.begin(), o.drop.end(), "gender") == o.drop.end()) {
      o.drop.push_back("gender");
    }
  }
  return o;
}

const data::Dataset& sweep_dataset(const TaskEnv& env) {
  return WorkerCache::instance().dataset(sweep_data_options(*env.config, env.workdir));
}

data::Dataset dataset_for(const SplitRows& rows, const TaskEnv& env) {
  data::Dataset d = sweep_dataset(env);
  d.schema.learn_bounds(d.x, rows.train);
  return d;
}

std::vector<int> labels(const data::Dataset& d, const std::vector<std::size_t>& rows) {
  std::vector<int> y;
  y.reserve(rows.size());
  for (auto r : rows) y.push_back(d.y[r]);
  return y;
}

std::vector<int> scarce_classes(const std::string& scenario) {
  if (scenario == vocab::kPositive) return {1};
  if (scenario == vocab::kNegative) return {0};
  if (scenario == vocab::kDual) return {0, 1};
  return {};
}

clf::ClfOptions nn_options(int seed, const TaskEnv& env) {
  clf::ClfOptions o = env.config->clf;
  o.model = "nn";
  o.seed = static_cast<std::uint64_t>(seed);
  o.threads = env.threads;
  return o;
}

store::ClfMetricRow clf_row(const Task& task, const std::string& model, const clf::Metrics& m, std::size_t n_train) {
  store::ClfMetricRow r;
  r.key = task.key;
  r.kind = task.kind;
  r.model = model;
  r.method = task.param("method");
  r.scenario = task.param("scenario");
  r.seed = task.params.at("seed").get<long long>();
  r.fraction = task.params.value("fraction", 0.0);
  r.ratio = task.params.value("ratio", 0.0);
  r.n_train = static_cast<long long>(n_train);
  r.accuracy = m.accuracy;
  r.precision = m.precision;
  r.recall = m.recall;
  r.f1 = m.f1;
  r.auc = m.auc;
  return r;
}

void add_curve(const Task& task, const clf::Classifier& model, store::TaskOutput& out) {
  for (const auto& e : model.training_curve()) {
    store::TrainRow r;
    r.key = task.key;
    r.kind = task.kind;
    r.step = e.epoch;
    r.loss = e.loss;
    r.val_loss = e.val_loss;
    out.train.push_back(r);
  }
}

}  // namespace sensecf::sweep::kinds
