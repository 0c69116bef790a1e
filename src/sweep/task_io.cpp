// Artefacts between tasks and the per-worker cache (see task_io.h).
#include "sensecf/sweep/task_io.h"

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "sensecf/core/error.h"

namespace sensecf::sweep {
namespace fs = std::filesystem;

namespace {

constexpr const char* kRowsFile = "rows.json";
constexpr const char* kCfsFile = "cfs.json";

nlohmann::json read_json(const std::string& path, const Task& reader) {
  std::ifstream in(path);
  if (!in)
    throw Error(fmt::format("{}: cannot read '{}' written by an earlier task", reader.label(), path),
                "was the work directory moved or cleaned? Restore it, or start a new results file");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: '{}' is not valid JSON: {}", reader.label(), path, e.what()));
  }
}

// Doubles as JSON numbers (exact), NaN as null.
nlohmann::json doubles_to_json(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x));
  return a;
}
std::vector<double> doubles_from_json(const nlohmann::json& a) {
  std::vector<double> v;
  v.reserve(a.size());
  for (const auto& x : a) v.push_back(x.is_null() ? std::numeric_limits<double>::quiet_NaN() : x.get<double>());
  return v;
}

}  // namespace

std::string task_dir(const std::string& workdir, const std::string& key) { return workdir + "/tasks/" + key; }

std::string input_dir(const Task& task, const std::string& workdir, const char* input) {
  return task_dir(workdir, task.input(input));
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

void write_split_rows(const std::string& dir, const SplitRows& rows) {
  fs::create_directories(dir);
  const nlohmann::json j = {{"train", rows.train}, {"kept", rows.kept}, {"removed", rows.removed}, {"test", rows.test}};
  write_text_atomically(dir + "/" + kRowsFile, j.dump());
}

SplitRows read_split_rows(const std::string& dir, const Task& reader) {
  const std::string path = dir + "/" + kRowsFile;
  const auto j = read_json(path, reader);
  try {
    SplitRows r;
    r.train = j.at("train").get<std::vector<std::size_t>>();
    r.kept = j.at("kept").get<std::vector<std::size_t>>();
    r.removed = j.at("removed").get<std::vector<std::size_t>>();
    r.test = j.at("test").get<std::vector<std::size_t>>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: '{}' is not a rows file: {}", reader.label(), path, e.what()),
                "it is written by the prepare task; remove the results file's journal entry or start a new one");
  }
}

void write_cf_set(const std::string& dir, const store::CfArrays& a) {
  fs::create_directories(dir);
  const nlohmann::json j = {{"artefact", "cf-set"},
                            {"version", 1},
                            {"key", a.key},
                            {"method", a.method},
                            {"scenario", a.scenario},
                            {"purpose", a.purpose},
                            {"seed", a.seed},
                            {"features", a.features},
                            {"n", a.n},
                            {"d", a.d},
                            {"query_row", a.query_row},
                            {"factual", doubles_to_json(a.factual)},
                            {"counterfactual", doubles_to_json(a.counterfactual)},
                            {"target", a.target},
                            {"probability", doubles_to_json(a.probability)},
                            {"valid", a.valid},
                            {"found", a.found}};
  write_text_atomically(dir + "/" + kCfsFile, j.dump());
}

store::CfArrays read_cf_set(const std::string& dir, const Task& reader) {
  const std::string path = dir + "/" + kCfsFile;
  const auto j = read_json(path, reader);
  try {
    if (j.at("artefact") != "cf-set" || j.at("version") != 1)
      throw Error(fmt::format("{}: '{}' is not a version-1 CF set", reader.label(), path));
    store::CfArrays a;
    a.key = j.at("key").get<std::string>();
    a.method = j.at("method").get<std::string>();
    a.scenario = j.at("scenario").get<std::string>();
    a.purpose = j.at("purpose").get<std::string>();
    a.seed = j.at("seed").get<long long>();
    a.features = j.at("features").get<std::vector<std::string>>();
    a.n = j.at("n").get<std::size_t>();
    a.d = j.at("d").get<std::size_t>();
    a.query_row = j.at("query_row").get<std::vector<long long>>();
    a.factual = doubles_from_json(j.at("factual"));
    a.counterfactual = doubles_from_json(j.at("counterfactual"));
    a.target = j.at("target").get<std::vector<long long>>();
    a.probability = doubles_from_json(j.at("probability"));
    a.valid = j.at("valid").get<std::vector<long long>>();
    a.found = j.at("found").get<std::vector<long long>>();
    if (a.counterfactual.size() != a.n * a.d || a.target.size() != a.n || a.valid.size() != a.n)
      throw Error(fmt::format("{}: '{}' has arrays of the wrong length for n = {}, d = {}", reader.label(), path, a.n,
                              a.d));
    return a;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: '{}' is not a CF set: {}", reader.label(), path, e.what()),
                "it is written by the generate task; rerun that task (new results file) to rewrite it");
  }
}

WorkerCache& WorkerCache::instance() {
  static WorkerCache cache;
  return cache;
}

const data::Dataset& WorkerCache::dataset(const data::DataOptions& options) {
  const std::lock_guard<std::mutex> lock(mutex_);
  auto it = datasets_.find(options.path);
  if (it == datasets_.end()) it = datasets_.emplace(options.path, data::read_csv(options)).first;
  return it->second;
}

std::shared_ptr<const clf::TrainedModel> WorkerCache::model(const std::string& dir) {
  const std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = models_.begin(); it != models_.end(); ++it) {
    if (it->first != dir) continue;
    models_.splice(models_.begin(), models_, it);
    return models_.front().second;
  }
  auto loaded = std::make_shared<const clf::TrainedModel>(clf::load_model(dir));
  ++model_loads_;
  models_.emplace_front(dir, loaded);
  while (models_.size() > model_capacity_) models_.pop_back();
  return loaded;
}

}  // namespace sensecf::sweep
