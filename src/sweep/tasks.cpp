// The task kinds of the study and probe plans (see plan.h for the DAG).
#include "sensecf/sweep/tasks.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "sensecf/cf/metrics.h"
#include "sensecf/clf/metrics.h"
#include "sensecf/clf/nn.h"
#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/data/split.h"

namespace sensecf::sweep {
namespace fs = std::filesystem;

std::string task_dir(const std::string& workdir, const std::string& key) { return workdir + "/tasks/" + key; }

namespace {

std::string data_path(const SweepConfig& c, const std::string& workdir) {
  return c.data.path.empty() ? workdir + "/cohort.csv" : c.data.path;
}

// The data set, read once per process (tasks on one worker share it).
const data::Dataset& dataset(const SweepConfig& c, const std::string& workdir) {
  static std::mutex mutex;
  static std::map<std::string, data::Dataset> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  const std::string path = data_path(c, workdir);
  auto it = cache.find(path);
  if (it == cache.end()) {
    data::DataOptions o = c.data;
    o.path = path;
    it = cache.emplace(path, data::read_csv(o)).first;
  }
  return it->second;
}

void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) throw Error("cannot write '" + tmp + "'", "is the work directory writable (and not full)?");
  }
  fs::rename(tmp, path);
}

nlohmann::json read_json(const std::string& path, const Task& task) {
  std::ifstream in(path);
  if (!in)
    throw Error(fmt::format("{}: cannot read '{}' written by an earlier task", task.label(), path),
                "was the work directory moved or cleaned? Restore it, or start a new results file");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: '{}' is not valid JSON: {}", task.label(), path, e.what()));
  }
}

// What prepare wrote: the rows of one (seed, scenario).
struct Rows {
  std::vector<std::size_t> train, kept, removed, test;
};

Rows load_rows(const Task& task, const TaskEnv& env) {
  const auto j = read_json(task_dir(env.workdir, task.deps.at(0)) + "/rows.json", task);
  Rows r;
  r.train = j.at("train").get<std::vector<std::size_t>>();
  r.kept = j.at("kept").get<std::vector<std::size_t>>();
  r.removed = j.at("removed").get<std::vector<std::size_t>>();
  r.test = j.at("test").get<std::vector<std::size_t>>();
  return r;
}

// The data set with bounds learned from this seed's training split (as train-clf does).
data::Dataset dataset_for(const Rows& rows, const TaskEnv& env) {
  data::Dataset d = dataset(*env.config, env.workdir);
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
  if (scenario == "positive") return {1};
  if (scenario == "negative") return {0};
  if (scenario == "dual") return {0, 1};
  return {};
}

clf::ClfOptions nn_options(const Task& task, const TaskEnv& env) {
  clf::ClfOptions o = env.config->clf;
  o.model = "nn";
  o.seed = task.params.at("seed").get<std::uint64_t>();
  o.threads = env.threads;
  return o;
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

// --- prepare ------------------------------------------------------------------------

store::TaskOutput run_prepare(const Task& task, const TaskEnv& env) {
  const auto& d = dataset(*env.config, env.workdir);
  const auto seed = task.params.at("seed").get<std::uint64_t>();
  const auto split = data::patient_split(d, env.config->data.test_fraction, seed);
  const std::string scenario = task.param("scenario");
  const auto sc = data::make_scenario(d, split.train, data::parse_scarcity(scenario),
                                      task.params.at("fraction").get<double>(), seed);
  const std::string dir = task_dir(env.workdir, task.key);
  fs::create_directories(dir);
  const nlohmann::json rows = {{"train", split.train}, {"kept", sc.kept}, {"removed", sc.removed},
                               {"test", split.test}};
  write_text_atomically(dir + "/rows.json", rows.dump());
  spdlog::debug("{}: {} train ({} kept, {} removed), {} test rows", task.label(), split.train.size(),
                sc.kept.size(), sc.removed.size(), split.test.size());
  store::TaskOutput out;
  out.artifacts["rows"] = dir + "/rows.json";
  return out;
}

// --- train_clf ----------------------------------------------------------------------

store::TaskOutput run_train_clf(const Task& task, const TaskEnv& env) {
  const Rows rows = load_rows(task, env);
  const data::Dataset d = dataset_for(rows, env);
  auto model = clf::make_classifier(nn_options(task, env));
  model->fit(d.schema, d.x.rows(rows.kept), labels(d, rows.kept));
  const auto m = clf::evaluate(labels(d, rows.test), model->predict_proba(d.x.rows(rows.test)));
  const std::string dir = task_dir(env.workdir, task.key) + "/clf";
  clf::save_model(*model, d.schema,
                  {{"task", task.label()}, {"test_metrics", m.to_json()}, {"train_rows", rows.kept.size()}}, dir);
  store::TaskOutput out;
  out.clf.push_back(clf_row(task, "nn", m, rows.kept.size()));
  add_curve(task, *model, out);
  out.artifacts["clf"] = dir;
  return out;
}

// --- fig1 ---------------------------------------------------------------------------

store::TaskOutput run_fig1(const Task& task, const TaskEnv& env) {
  const Rows rows = load_rows(task, env);
  const data::Dataset d = dataset_for(rows, env);
  clf::ClfOptions o = nn_options(task, env);
  o.model = task.param("model");
  const double reduction = task.params.at("reduction").get<double>();
  const auto train = data::reduce_patients(d, rows.train, reduction, o.seed);
  auto model = clf::make_classifier(o);
  model->fit(d.schema, d.x.rows(train), labels(d, train));
  const auto m = clf::evaluate(labels(d, rows.test), model->predict_proba(d.x.rows(rows.test)));
  store::TaskOutput out;
  auto row = clf_row(task, o.model, m, train.size());
  row.scenario = "full";
  row.fraction = reduction;
  out.clf.push_back(row);
  return out;
}

// --- generate -----------------------------------------------------------------------

struct Queries {
  std::vector<std::size_t> rows;
  std::vector<int> targets;
};

Queries table3_queries(const Task& task, const TaskEnv& env, const Rows& rows, const data::Dataset& d,
                       const cf::BlackBox& f) {
  std::vector<std::size_t> test = rows.test;
  const auto seed = task.params.at("seed").get<std::uint64_t>();
  Rng rng(derive_seed(seed, "table3-queries"));
  rng.shuffle(test);
  const auto limit = static_cast<std::size_t>(env.config->sweep.queries);
  if (limit > 0 && test.size() > limit) test.resize(limit);
  std::sort(test.begin(), test.end());
  Queries q;
  q.rows = test;
  for (double p : f.predict_proba(d.x.rows(test))) q.targets.push_back(p > 0.5 ? 0 : 1);
  return q;
}

// For each scarce class c: training rows that f assigns to the other class,
// to be flipped into c; enough for the largest ratio (times oversample).
Queries augment_queries(const Task& task, const TaskEnv& env, const Rows& rows, const data::Dataset& d,
                        const cf::BlackBox& f) {
  const auto& s = env.config->sweep;
  const double max_ratio = *std::max_element(s.ratios.begin(), s.ratios.end());
  const auto seed = task.params.at("seed").get<std::uint64_t>();
  const auto p = f.predict_proba(d.x.rows(rows.kept));
  Queries q;
  for (int c : scarce_classes(task.param("scenario"))) {
    const std::size_t removed = d.count_label(c, rows.removed);
    const auto needed = static_cast<std::size_t>(std::ceil(max_ratio * static_cast<double>(removed)));
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < rows.kept.size(); ++i) {
      if ((p[i] > 0.5 ? 1 : 0) != c) candidates.push_back(rows.kept[i]);
    }
    Rng rng(derive_seed(seed, "augment-queries/" + std::to_string(c)));
    rng.shuffle(candidates);
    const auto n = std::min(candidates.size(),
                            static_cast<std::size_t>(std::ceil(s.oversample * static_cast<double>(needed))));
    for (std::size_t i = 0; i < n; ++i) {
      q.rows.push_back(candidates[i]);
      q.targets.push_back(c);
    }
  }
  return q;
}

store::CfArrays cf_arrays(const Task& task, const data::Dataset& d, const Queries& q,
                          const std::vector<cf::QueryResult>& results) {
  store::CfArrays a;
  a.key = task.key;
  a.method = task.param("method");
  a.scenario = task.param("scenario");
  a.purpose = task.param("purpose");
  a.seed = task.params.at("seed").get<long long>();
  a.features = d.schema.names();
  a.n = q.rows.size();
  a.d = d.schema.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  a.counterfactual.assign(a.n * a.d, nan);
  a.probability.assign(a.n, nan);
  a.valid.assign(a.n, 0);
  a.found.assign(a.n, 0);
  for (std::size_t i = 0; i < a.n; ++i) {
    a.query_row.push_back(static_cast<long long>(q.rows[i]));
    a.target.push_back(q.targets[i]);
    const double* x = d.x.row(q.rows[i]);
    a.factual.insert(a.factual.end(), x, x + a.d);
  }
  for (const auto& r : results) {
    if (r.cfs.empty()) continue;
    const auto& c = r.cfs.front();
    std::copy(c.x.begin(), c.x.end(), a.counterfactual.begin() + static_cast<long>(r.query * a.d));
    a.probability[r.query] = c.p1;
    a.valid[r.query] = c.valid ? 1 : 0;
    a.found[r.query] = 1;
  }
  return a;
}

store::TaskOutput run_generate(const Task& task, const TaskEnv& env) {
  const Rows rows = load_rows(task, env);
  const auto trained = clf::load_model(task_dir(env.workdir, task.deps.at(1)) + "/clf");
  data::Dataset d = dataset(*env.config, env.workdir);
  d.schema = trained.schema;  // bounds learned from this split's training rows by train_clf
  const data::Matrix train_x = d.x.rows(rows.kept);
  const std::vector<int> train_y = labels(d, rows.kept);
  clf::set_torch_threads(1);  // parallel over queries instead
  cf::BlackBox f(*trained.model);
  const cf::Context context{&f, &d.schema, &train_x, &train_y};
  const bool table3 = task.param("purpose") == "table3";
  const Queries q = table3 ? table3_queries(task, env, rows, d, f) : augment_queries(task, env, rows, d, f);

  cf::CfOptions o = env.config->cf;
  o.method = task.param("method");
  o.seed = task.params.at("seed").get<unsigned long>();
  o.threads = env.threads;
  auto generator = cf::make_generator(o);
  generator->prepare(context);
  const data::Matrix query_x = d.x.rows(q.rows);
  const auto results = cf::explain_all(*generator, context, query_x, q.targets, o);

  store::TaskOutput out;
  const auto by_class = cf::evaluate_by_class(results, query_x, d.schema, f, train_x);
  for (const auto& [cls, m] : by_class) {
    store::CfMetricRow r;
    r.key = task.key;
    r.method = o.method;
    r.scenario = task.param("scenario");
    r.purpose = task.param("purpose");
    r.seed = task.params.at("seed").get<long long>();
    r.factual_class = cls;
    r.n_queries = static_cast<long long>(m.n_queries);
    r.n_cfs = static_cast<long long>(m.n_cfs);
    r.coverage = m.coverage;
    r.validity = m.validity;
    r.distance = m.distance;
    r.sparsity = m.sparsity;
    r.plausibility = m.plausibility;
    r.ynn = m.ynn;
    r.knn_distance = m.knn_distance;
    r.violations = m.violations;
    r.redundancy = m.redundancy;
    r.seconds_per_query = m.seconds_per_query;
    out.cf.push_back(r);
  }
  auto arrays = cf_arrays(task, d, q, results);
  const std::string dir = task_dir(env.workdir, task.key);
  fs::create_directories(dir);
  store::TaskOutput for_file;
  for_file.counterfactuals.push_back(arrays);
  write_text_atomically(dir + "/cfs.json", store::to_json(for_file).dump());
  out.counterfactuals.push_back(std::move(arrays));
  out.artifacts["cfs"] = dir + "/cfs.json";
  return out;
}

// --- augment ------------------------------------------------------------------------

store::TaskOutput run_augment(const Task& task, const TaskEnv& env) {
  const Rows rows = load_rows(task, env);
  const data::Dataset d = dataset_for(rows, env);
  const auto cfs_json = read_json(task_dir(env.workdir, task.deps.at(2)) + "/cfs.json", task);
  const auto cfs = store::task_output_from_json(cfs_json).counterfactuals.at(0);
  const double ratio = task.params.at("ratio").get<double>();

  data::Matrix x = d.x.rows(rows.kept);
  std::vector<int> y = labels(d, rows.kept);
  long long wanted_total = 0, added_total = 0;
  for (int c : scarce_classes(task.param("scenario"))) {
    const std::size_t removed = d.count_label(c, rows.removed);
    const auto wanted = static_cast<std::size_t>(std::llround(ratio * static_cast<double>(removed)));
    std::size_t added = 0;
    // Valid CFs of class c in query order, labelled by f_s (valid: f_s(x') = c).
    for (std::size_t i = 0; i < cfs.n && added < wanted; ++i) {
      if (cfs.target[i] != c || !cfs.valid[i]) continue;
      x.values.insert(x.values.end(), cfs.counterfactual.begin() + static_cast<long>(i * cfs.d),
                      cfs.counterfactual.begin() + static_cast<long>((i + 1) * cfs.d));
      ++x.n_rows;
      y.push_back(c);
      ++added;
    }
    if (added < wanted) {
      spdlog::warn("{}: only {} valid class-{} CFs for the {} wanted (ratio {} of {} removed)", task.label(), added,
                   c, wanted, ratio, removed);
    }
    wanted_total += static_cast<long long>(wanted);
    added_total += static_cast<long long>(added);
  }
  auto model = clf::make_classifier(nn_options(task, env));
  model->fit(d.schema, x, y);
  const auto m = clf::evaluate(labels(d, rows.test), model->predict_proba(d.x.rows(rows.test)));
  store::TaskOutput out;
  auto row = clf_row(task, "nn", m, x.n_rows);
  row.n_added = added_total;
  row.n_wanted = wanted_total;
  out.clf.push_back(row);
  add_curve(task, *model, out);
  return out;
}

// --- probe --------------------------------------------------------------------------

store::TaskOutput run_probe(const Task& task, const TaskEnv& env) {
  const auto& s = env.config->sweep;
  const int index = task.params.at("index").get<int>();
  auto has = [index](const std::vector<int>& v) { return std::find(v.begin(), v.end(), index) != v.end(); };
  if (s.probe_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(s.probe_ms));
  if (has(s.probe_fail)) throw Error(fmt::format("probe task {} fails by request (sweep.probe_fail)", index));
  if (has(s.probe_flaky) && env.attempt == 1)
    throw Error(fmt::format("probe task {} fails on its first attempt (sweep.probe_flaky)", index));
  // Every rank of the gang contributes 1: the sum is the gang's size.
  int one = 1, gang_size = 0;
  SENSECF_MPI_CHECK(MPI_Allreduce(&one, &gang_size, 1, MPI_INT, MPI_SUM, env.gang));
  store::TaskOutput out;
  store::TrainRow r;
  r.key = task.key;
  r.kind = "probe";
  r.step = index;
  r.loss = gang_size;
  r.val_loss = env.attempt;
  out.train.push_back(r);
  return out;
}

}  // namespace

void prepare_workdir(const SweepConfig& config, const std::string& workdir) {
  fs::create_directories(workdir + "/tasks");
  if (config.sweep.plan != "study" || !config.data.path.empty()) return;
  const std::string path = workdir + "/cohort.csv";
  const auto cohort = data::make_synthetic_cohort(config.synth);
  data::write_csv(cohort, path + ".tmp");
  fs::rename(path + ".tmp", path);
}

store::TaskOutput run_task(const Task& task, const TaskEnv& env) {
  if (task.kind == "prepare") return run_prepare(task, env);
  if (task.kind == "train_clf") return run_train_clf(task, env);
  if (task.kind == "fig1") return run_fig1(task, env);
  if (task.kind == "generate") return run_generate(task, env);
  if (task.kind == "augment") return run_augment(task, env);
  if (task.kind == "probe") return run_probe(task, env);
  throw Error("unknown task kind '" + task.kind + "'", "the results file may come from a newer sensecf");
}

}  // namespace sensecf::sweep
