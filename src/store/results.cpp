// The results file: row structs <-> HDF5 compound tables and JSON.
//
// Each row struct is described once, as a list of fields (name, column type,
// member pointer). The same list builds the HDF5 columns, the table rows and the
// JSON objects, so a new column is one line here.
#include "sensecf/store/results.h"

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <functional>
#include <limits>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/store/h5file.h"

namespace sensecf::store {
namespace {

template <class R>
struct Field {
  std::string name;
  ColumnType type;
  std::size_t length;  // strings
  std::function<Value(const R&)> get;
  std::function<void(R&, const Value&)> set;
};

template <class R>
Field<R> text(const char* name, std::size_t length, std::string R::*m) {
  return {name, ColumnType::kString, length, [m](const R& r) { return Value(r.*m); },
          [m](R& r, const Value& v) { r.*m = std::get<std::string>(v); }};
}
template <class R>
Field<R> integer(const char* name, long long R::*m) {
  return {name, ColumnType::kInt64, 0, [m](const R& r) { return Value(r.*m); },
          [m](R& r, const Value& v) { r.*m = std::get<long long>(v); }};
}
template <class R>
Field<R> real(const char* name, double R::*m) {
  return {name, ColumnType::kFloat64, 0, [m](const R& r) { return Value(r.*m); },
          [m](R& r, const Value& v) { r.*m = std::get<double>(v); }};
}

const std::vector<Field<TaskRecord>>& task_fields() {
  using R = TaskRecord;
  static const std::vector<Field<R>> f = {
      text("key", 17, &R::key),          text("kind", 16, &R::kind),         text("label", 96, &R::label),
      text("method", 32, &R::method),    text("scenario", 12, &R::scenario), text("model", 12, &R::model),
      integer("seed", &R::seed),         real("ratio", &R::ratio),           text("status", 8, &R::status),
      integer("attempt", &R::attempt),   integer("rank", &R::rank),          text("host", 64, &R::host),
      text("device", 24, &R::device),    real("started", &R::started),       real("seconds", &R::seconds),
      text("message", 512, &R::message),
  };
  return f;
}

const std::vector<Field<CfMetricRow>>& cf_fields() {
  using R = CfMetricRow;
  static const std::vector<Field<R>> f = {
      text("key", 17, &R::key),
      text("method", 32, &R::method),
      text("scenario", 12, &R::scenario),
      text("purpose", 12, &R::purpose),
      integer("seed", &R::seed),
      integer("factual_class", &R::factual_class),
      integer("n_queries", &R::n_queries),
      integer("n_cfs", &R::n_cfs),
      real("coverage", &R::coverage),
      real("validity", &R::validity),
      real("validity_returned", &R::validity_returned),
      real("parse_rate", &R::parse_rate),
      real("distance", &R::distance),
      real("sparsity", &R::sparsity),
      real("plausibility", &R::plausibility),
      real("ynn", &R::ynn),
      real("knn_distance", &R::knn_distance),
      real("violations", &R::violations),
      real("redundancy", &R::redundancy),
      real("seconds_per_query", &R::seconds_per_query),
  };
  return f;
}

const std::vector<Field<ClfMetricRow>>& clf_fields() {
  using R = ClfMetricRow;
  static const std::vector<Field<R>> f = {
      text("key", 17, &R::key),           text("kind", 16, &R::kind),        text("model", 12, &R::model),
      text("method", 32, &R::method),     text("scenario", 12, &R::scenario), integer("seed", &R::seed),
      real("fraction", &R::fraction),     real("ratio", &R::ratio),          integer("n_train", &R::n_train),
      integer("n_added", &R::n_added),    integer("n_wanted", &R::n_wanted), real("accuracy", &R::accuracy),
      real("precision", &R::precision),   real("recall", &R::recall),        real("f1", &R::f1),
      real("auc", &R::auc),
  };
  return f;
}

const std::vector<Field<TrainRow>>& train_fields() {
  using R = TrainRow;
  static const std::vector<Field<R>> f = {
      text("key", 17, &R::key), text("kind", 16, &R::kind), integer("step", &R::step),
      real("loss", &R::loss),   real("val_loss", &R::val_loss),
  };
  return f;
}

const std::vector<Field<UsageRow>>& usage_fields() {
  using R = UsageRow;
  static const std::vector<Field<R>> f = {
      text("key", 17, &R::key),
      text("method", 32, &R::method),
      text("scenario", 12, &R::scenario),
      text("purpose", 12, &R::purpose),
      integer("seed", &R::seed),
      integer("requests", &R::requests),
      integer("answers", &R::answers),
      integer("cache_hits", &R::cache_hits),
      integer("retries", &R::retries),
      integer("failures", &R::failures),
      integer("prompt_tokens", &R::prompt_tokens),
      integer("completion_tokens", &R::completion_tokens),
      real("cost_usd", &R::cost_usd),
      real("seconds", &R::seconds),
  };
  return f;
}

template <class R>
std::vector<Column> columns_of(const std::vector<Field<R>>& fields) {
  std::vector<Column> c;
  for (const auto& f : fields) c.push_back({f.name, f.type, f.length});
  return c;
}

// Strings longer than their column are cut (with a marker) rather than refused:
// a long failure message must not lose the row.
template <class R>
Row to_row(const std::vector<Field<R>>& fields, const R& r) {
  Row row;
  for (const auto& f : fields) {
    Value v = f.get(r);
    if (f.type == ColumnType::kString) {
      auto& s = std::get<std::string>(v);
      if (s.size() + 1 > f.length) s = s.substr(0, f.length - 4) + "...";
    }
    row.push_back(std::move(v));
  }
  return row;
}

// A table's columns as the row struct reads them: a column named like a field
// holds that field's type (an integer column is read into a real field).
template <class R>
void check_columns(const std::vector<Field<R>>& fields, const std::vector<Column>& columns, const std::string& path,
                   const std::string& table) {
  static const char* const kHolds[] = {"integers", "real numbers", "text"};  // by ColumnType
  for (const auto& f : fields) {
    for (const auto& c : columns) {
      if (c.name != f.name || c.type == f.type || (c.type == ColumnType::kInt64 && f.type == ColumnType::kFloat64))
        continue;
      throw Error(fmt::format("'{}': column '{}' of {} holds {}, expected {}", path, c.name, table,
                              kHolds[static_cast<int>(c.type)], kHolds[static_cast<int>(f.type)]),
                  "the file is damaged or was rewritten by another program; rerun the sweep into a new --results "
                  "file");
    }
  }
}

template <class R>
R from_row(const std::vector<Field<R>>& fields, const std::vector<Column>& columns, const Row& row) {
  R r;
  for (const auto& f : fields) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (columns[i].name != f.name) continue;
      const auto* integer_value = std::get_if<long long>(&row[i]);
      if (f.type == ColumnType::kFloat64 && integer_value) {
        f.set(r, Value(static_cast<double>(*integer_value)));
      } else {
        f.set(r, row[i]);
      }
    }
  }
  return r;
}

// JSON: doubles are written exactly; NaN / inf (which JSON lacks) as strings.
nlohmann::json number_to_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}
double number_from_json(const nlohmann::json& j) {
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    throw Error("results JSON: expected a number, got '" + s + "'");
  }
  return j.get<double>();
}

template <class R>
nlohmann::json fields_to_json(const std::vector<Field<R>>& fields, const R& r) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : fields) {
    const Value v = f.get(r);
    if (f.type == ColumnType::kString) j[f.name] = std::get<std::string>(v);
    else if (f.type == ColumnType::kInt64) j[f.name] = std::get<long long>(v);
    else j[f.name] = number_to_json(std::get<double>(v));
  }
  return j;
}

template <class R>
R fields_from_json(const std::vector<Field<R>>& fields, const nlohmann::json& j) {
  R r;
  for (const auto& f : fields) {
    const auto it = j.find(f.name);
    if (it == j.end()) continue;  // absent: the struct default
    if (f.type == ColumnType::kString) f.set(r, Value(it->template get<std::string>()));
    else if (f.type == ColumnType::kInt64) f.set(r, Value(it->template get<long long>()));
    else f.set(r, Value(number_from_json(*it)));
  }
  return r;
}

nlohmann::json doubles_to_json(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(number_to_json(x));
  return a;
}
std::vector<double> doubles_from_json(const nlohmann::json& a) {
  std::vector<double> v;
  v.reserve(a.size());
  for (const auto& x : a) v.push_back(number_from_json(x));
  return v;
}

nlohmann::json arrays_to_json(const CfArrays& c) {
  return {{"key", c.key},
          {"method", c.method},
          {"scenario", c.scenario},
          {"purpose", c.purpose},
          {"seed", c.seed},
          {"features", c.features},
          {"n", c.n},
          {"d", c.d},
          {"query_row", c.query_row},
          {"factual", doubles_to_json(c.factual)},
          {"counterfactual", doubles_to_json(c.counterfactual)},
          {"target", c.target},
          {"probability", doubles_to_json(c.probability)},
          {"valid", c.valid},
          {"found", c.found},
          {"answer", c.answer.empty() ? std::vector<std::string>(c.n) : c.answer},
          {"patient", c.patient},
          {"schema", c.schema}};
}

CfArrays arrays_from_json(const nlohmann::json& j) {
  CfArrays c;
  c.key = j.at("key").get<std::string>();
  c.method = j.at("method").get<std::string>();
  c.scenario = j.at("scenario").get<std::string>();
  c.purpose = j.at("purpose").get<std::string>();
  c.seed = j.at("seed").get<long long>();
  c.features = j.at("features").get<std::vector<std::string>>();
  c.n = j.at("n").get<std::size_t>();
  c.d = j.at("d").get<std::size_t>();
  c.query_row = j.at("query_row").get<std::vector<long long>>();
  c.factual = doubles_from_json(j.at("factual"));
  c.counterfactual = doubles_from_json(j.at("counterfactual"));
  c.target = j.at("target").get<std::vector<long long>>();
  c.probability = doubles_from_json(j.at("probability"));
  c.valid = j.at("valid").get<std::vector<long long>>();
  c.found = j.at("found").get<std::vector<long long>>();
  // A journal written before the answer column: no answers.
  c.answer = j.contains("answer") ? j.at("answer").get<std::vector<std::string>>() : std::vector<std::string>(c.n);
  // Journals written before these existed have neither.
  if (j.contains("patient")) c.patient = j.at("patient").get<std::vector<std::string>>();
  if (j.contains("schema")) c.schema = j.at("schema").get<std::string>();
  if (!c.patient.empty() && c.patient.size() != c.n) {
    throw Error(fmt::format("counterfactual arrays of task {}: {} patient ids for n={}", c.key, c.patient.size(), c.n));
  }
  if (c.factual.size() != c.n * c.d || c.counterfactual.size() != c.n * c.d || c.query_row.size() != c.n ||
      c.target.size() != c.n || c.probability.size() != c.n || c.valid.size() != c.n || c.found.size() != c.n ||
      c.answer.size() != c.n) {
    throw Error(fmt::format("counterfactual arrays of task {}: sizes do not match n={} d={}", c.key, c.n, c.d));
  }
  return c;
}

const char* kTasks = "/tasks";
const char* kCf = "/metrics/cf";
const char* kClf = "/metrics/clf";
const char* kTrain = "/metrics/train";
const char* kUsage = "/metrics/usage";
const char* kCounterfactuals = "/counterfactuals";

void write_arrays(H5File& file, const CfArrays& c) {
  const std::string base = std::string(kCounterfactuals) + "/" + c.key;
  if (file.exists(base)) return;  // the same task's CFs, written by an earlier attempt
  file.write_array(base + "/query_row", c.query_row, {c.n});
  file.write_array(base + "/factual", c.factual, {c.n, c.d});
  file.write_array(base + "/counterfactual", c.counterfactual, {c.n, c.d});
  file.write_array(base + "/target", c.target, {c.n});
  file.write_array(base + "/probability", c.probability, {c.n});
  file.write_array(base + "/valid", c.valid, {c.n});
  file.write_array(base + "/found", c.found, {c.n});
  // Arrays built before the answer column existed have none: one "" per query.
  file.write_strings(base + "/answer", c.answer.size() == c.n ? c.answer : std::vector<std::string>(c.n));
  file.set_attribute(base, "features", nlohmann::json(c.features).dump());
  file.set_attribute(base, "method", c.method);
  file.set_attribute(base, "scenario", c.scenario);
  file.set_attribute(base, "purpose", c.purpose);
  file.set_attribute(base, "seed", std::to_string(c.seed));
  if (c.patient.size() == c.n) file.write_strings(base + "/patient", c.patient);
  if (!c.schema.empty()) file.set_attribute(base, "schema", c.schema);
}

CfArrays read_arrays(const H5File& file, const std::string& key) {
  const std::string base = std::string(kCounterfactuals) + "/" + key;
  CfArrays c;
  c.key = key;
  const std::string features = file.attribute(base, "features");
  try {
    c.features = nlohmann::json::parse(features).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}': {} has features '{}', expected a JSON list of feature names ({})", file.path(), base,
                            features, e.what()),
                "the file is damaged or was edited; rerun the generate task (delete its journal lines) or restore "
                "the file");
  }
  c.method = file.attribute(base, "method");
  c.scenario = file.attribute(base, "scenario");
  c.purpose = file.attribute(base, "purpose");
  const std::string seed = file.attribute(base, "seed");
  const auto seed_value = parse_int(seed);
  if (!seed_value) {
    throw Error(fmt::format("'{}': {} has seed '{}', expected a whole number", file.path(), base, seed),
                "the file is damaged or was edited; rerun the generate task (delete its journal lines) or restore "
                "the file");
  }
  c.seed = *seed_value;
  // Every array's shape is checked against n queries x d features (the
  // features attribute): a damaged or hand-edited group is an error naming
  // it, never an over-read in the report.
  const std::size_t d = c.features.size();
  std::size_t n = 0;
  auto shape_error = [&](const std::string& name, const std::vector<std::size_t>& dims, const std::string& want) {
    std::vector<std::string> parts;
    for (auto x : dims) parts.push_back(std::to_string(x));
    return Error(fmt::format("'{}': {}/{} has shape [{}], expected {}", file.path(), base, name, join(parts, ", "), want),
                 "the file is damaged or was edited; rerun the generate task (delete its journal lines) or restore "
                 "the file");
  };
  auto matrix = [&](const char* name) {
    std::vector<std::size_t> dims;
    auto v = file.read_doubles(base + "/" + name, &dims);
    if (dims.size() != 2 || dims[1] != d || (n && dims[0] != n))
      throw shape_error(name, dims, fmt::format("[{}, {}] (queries, features)", n ? std::to_string(n) : "n", d));
    n = dims[0];
    return v;
  };
  auto vector_of = [&](const char* name, auto read) {
    std::vector<std::size_t> dims;
    auto v = read(base + "/" + name, &dims);
    if (dims.size() != 1 || dims[0] != n) throw shape_error(name, dims, fmt::format("[{}] (one per query)", n));
    return v;
  };
  auto ints = [&](const std::string& path, std::vector<std::size_t>* dims) { return file.read_ints(path, dims); };
  auto doubles = [&](const std::string& path, std::vector<std::size_t>* dims) { return file.read_doubles(path, dims); };
  c.counterfactual = matrix("counterfactual");
  c.factual = matrix("factual");
  c.n = n;
  c.d = d;
  c.query_row = vector_of("query_row", ints);
  c.target = vector_of("target", ints);
  c.probability = vector_of("probability", doubles);
  c.valid = vector_of("valid", ints);
  c.found = vector_of("found", ints);
  c.answer = file.exists(base + "/answer") ? file.read_strings(base + "/answer") : std::vector<std::string>(c.n);
  if (c.answer.size() != c.n) {
    throw Error(fmt::format("'{}': {}/answer has {} entries for {} queries", file.path(), base, c.answer.size(), c.n),
                "the file is damaged; rerun the generate task");
  }
  if (file.exists(base + "/patient")) {
    c.patient = file.read_strings(base + "/patient");
    if (c.patient.size() != c.n) {
      throw Error(fmt::format("'{}': {}/patient has {} entries for {} queries", file.path(), base, c.patient.size(), c.n),
                  "the file is damaged; rerun the generate task");
    }
  }
  if (file.has_attribute(base, "schema")) c.schema = file.attribute(base, "schema");
  return c;
}

const char* kArtifacts = "/artifacts";

// /artifacts/<key>: one attribute per artefact a task names (paths under the
// work directory, an adapter's hash, ...), as text (JSON for non-strings).
void write_artifacts(H5File& file, const std::string& key, const nlohmann::json& artifacts) {
  if (artifacts.empty()) return;
  if (!file.exists(kArtifacts)) {
    Handle group(SENSECF_H5_CHECK(H5Gcreate2(file.id(), kArtifacts, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
                 H5Gclose);
  }
  const std::string base = std::string(kArtifacts) + "/" + key;
  if (!file.exists(base)) {
    Handle group(SENSECF_H5_CHECK(H5Gcreate2(file.id(), base.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
                 H5Gclose);
  }
  for (const auto& [name, value] : artifacts.items())
    file.set_attribute(base, name, value.is_string() ? value.get<std::string>() : value.dump());
}

const char* kProvenanceNames[] = {"sensecf_version", "git_sha", "config", "config_hash",
                                  "started",         "hosts",   "slurm_job_id"};

}  // namespace

nlohmann::json to_json(const TaskRecord& r) { return fields_to_json(task_fields(), r); }
TaskRecord task_record_from_json(const nlohmann::json& j) { return fields_from_json(task_fields(), j); }

nlohmann::json to_json(const TaskOutput& out) {
  nlohmann::json j = nlohmann::json::object();
  j["cf"] = nlohmann::json::array();
  for (const auto& r : out.cf) j["cf"].push_back(fields_to_json(cf_fields(), r));
  j["clf"] = nlohmann::json::array();
  for (const auto& r : out.clf) j["clf"].push_back(fields_to_json(clf_fields(), r));
  j["train"] = nlohmann::json::array();
  for (const auto& r : out.train) j["train"].push_back(fields_to_json(train_fields(), r));
  j["usage"] = nlohmann::json::array();
  for (const auto& r : out.usage) j["usage"].push_back(fields_to_json(usage_fields(), r));
  j["counterfactuals"] = nlohmann::json::array();
  for (const auto& c : out.counterfactuals) j["counterfactuals"].push_back(arrays_to_json(c));
  j["artifacts"] = out.artifacts;
  return j;
}

TaskOutput task_output_from_json(const nlohmann::json& j) {
  TaskOutput out;
  for (const auto& r : j.value("cf", nlohmann::json::array())) out.cf.push_back(fields_from_json(cf_fields(), r));
  for (const auto& r : j.value("clf", nlohmann::json::array())) out.clf.push_back(fields_from_json(clf_fields(), r));
  for (const auto& r : j.value("train", nlohmann::json::array()))
    out.train.push_back(fields_from_json(train_fields(), r));
  for (const auto& r : j.value("usage", nlohmann::json::array()))
    out.usage.push_back(fields_from_json(usage_fields(), r));
  for (const auto& c : j.value("counterfactuals", nlohmann::json::array()))
    out.counterfactuals.push_back(arrays_from_json(c));
  out.artifacts = j.value("artifacts", nlohmann::json::object());
  return out;
}

// --- writer ------------------------------------------------------------------------

struct ResultsWriter::Impl {
  H5File file;
  Table tasks, cf, clf, train, usage;
};

ResultsWriter::ResultsWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ResultsWriter::ResultsWriter(ResultsWriter&&) noexcept = default;
ResultsWriter& ResultsWriter::operator=(ResultsWriter&&) noexcept = default;
ResultsWriter::~ResultsWriter() = default;

ResultsWriter ResultsWriter::create(const std::string& path, const Provenance& p) {
  auto impl = std::make_unique<Impl>();
  impl->file = H5File::create(path);
  auto& f = impl->file;
  f.set_attribute("format_version", kResultsFormatVersion);
  const std::string values[] = {p.sensecf_version, p.git_sha, p.config, p.config_hash,
                                p.started,         p.hosts,   p.slurm_job_id};
  for (std::size_t i = 0; i < std::size(values); ++i) f.set_attribute(kProvenanceNames[i], values[i]);
  f.set_attribute("mpi_size", std::to_string(p.mpi_size));
  impl->tasks = Table::create(f, kTasks, columns_of(task_fields()), 64);
  impl->cf = Table::create(f, kCf, columns_of(cf_fields()), 64);
  impl->clf = Table::create(f, kClf, columns_of(clf_fields()), 64);
  impl->train = Table::create(f, kTrain, columns_of(train_fields()), 1024);
  impl->usage = Table::create(f, kUsage, columns_of(usage_fields()), 64);
  Handle group(SENSECF_H5_CHECK(H5Gcreate2(f.id(), kCounterfactuals, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
               H5Gclose);
  f.flush();
  return ResultsWriter(std::move(impl));
}

ResultsWriter ResultsWriter::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->file = H5File::open(path, /*writable=*/true);
  auto& f = impl->file;
  if (!f.has_attribute("format_version") || !f.exists(kTasks))
    throw Error("'" + path + "' is an HDF5 file but not a sensecf results file", "choose another --results path");
  const auto version = f.attribute("format_version");
  if (version != kResultsFormatVersion)
    throw Error(fmt::format("'{}' has results format version {}, this sensecf writes version {}", path, version,
                            kResultsFormatVersion),
                "write to a new --results file");
  impl->tasks = Table::open(f, kTasks);
  impl->cf = Table::open(f, kCf);
  impl->clf = Table::open(f, kClf);
  impl->train = Table::open(f, kTrain);
  // Files from before remote LLMs have no usage table: it starts here.
  impl->usage = f.exists(kUsage) ? Table::open(f, kUsage) : Table::create(f, kUsage, columns_of(usage_fields()), 64);
  return ResultsWriter(std::move(impl));
}

void ResultsWriter::append(const TaskRecord& task, const TaskOutput& output) { append({{task, output}}); }

void ResultsWriter::append(const std::vector<std::pair<TaskRecord, TaskOutput>>& batch) {
  std::vector<Row> tasks, cf, clf, train, usage;
  for (const auto& [task, out] : batch) {
    tasks.push_back(to_row(task_fields(), task));
    for (const auto& r : out.cf) cf.push_back(to_row(cf_fields(), r));
    for (const auto& r : out.clf) clf.push_back(to_row(clf_fields(), r));
    for (const auto& r : out.train) train.push_back(to_row(train_fields(), r));
    for (const auto& r : out.usage) usage.push_back(to_row(usage_fields(), r));
    for (const auto& c : out.counterfactuals) write_arrays(impl_->file, c);
    if (task.status == "done") write_artifacts(impl_->file, task.key, out.artifacts);
  }
  if (!tasks.empty()) impl_->tasks.append(tasks);
  if (!cf.empty()) impl_->cf.append(cf);
  if (!clf.empty()) impl_->clf.append(clf);
  if (!train.empty()) impl_->train.append(train);
  if (!usage.empty()) impl_->usage.append(usage);
}

void ResultsWriter::flush() { impl_->file.flush(); }
const std::string& ResultsWriter::path() const { return impl_->file.path(); }

// --- reader ------------------------------------------------------------------------

namespace {
Results read_results_from(const std::string& path) {
  H5File f = H5File::open(path, /*writable=*/false);
  if (!f.has_attribute("format_version") || !f.exists(kTasks))
    throw Error("'" + path + "' is an HDF5 file but not a sensecf results file",
                "pass the file written by `sensecf sweep --results`");
  Results r;
  r.format_version = f.attribute("format_version");
  if (r.format_version != kResultsFormatVersion)
    throw Error(fmt::format("'{}' has results format version {}; this sensecf reads version {}", path,
                            r.format_version, kResultsFormatVersion));
  std::string* targets[] = {&r.provenance.sensecf_version, &r.provenance.git_sha, &r.provenance.config,
                            &r.provenance.config_hash,     &r.provenance.started, &r.provenance.hosts,
                            &r.provenance.slurm_job_id};
  for (std::size_t i = 0; i < std::size(targets); ++i) {
    if (f.has_attribute(kProvenanceNames[i])) *targets[i] = f.attribute(kProvenanceNames[i]);
  }
  if (f.has_attribute("mpi_size")) {
    const auto text = f.attribute("mpi_size");
    const auto n = parse_int(text);
    if (!n) throw Error("attribute 'mpi_size' is '" + text + "', not a whole number");
    r.provenance.mpi_size = *n;
  }
  auto read_table = [&](const char* name, const auto& fields, auto& out) {
    const Table t = Table::open(f, name);
    check_columns(fields, t.columns(), path, name);
    for (const auto& row : t.read()) out.push_back(from_row(fields, t.columns(), row));
  };
  read_table(kTasks, task_fields(), r.tasks);
  read_table(kCf, cf_fields(), r.cf);
  read_table(kClf, clf_fields(), r.clf);
  read_table(kTrain, train_fields(), r.train);
  if (f.exists(kUsage)) read_table(kUsage, usage_fields(), r.usage);
  for (const auto& key : f.list(kCounterfactuals)) {
    r.counterfactuals.push_back(read_arrays(f, key));
  }
  return r;
}
}  // namespace

Results read_results(const std::string& path) {
  try {
    return read_results_from(path);
  } catch (const Error& e) {
    // Every message names the file; the HDF5 layer's own do not know it.
    const std::string what = e.what();
    if (what.find("'" + path + "'") != std::string::npos) throw;
    throw Error("'" + path + "': " + what,
                e.hint().empty() ? "the file is damaged, truncated or not written by `sensecf sweep`; "
                                   "`h5dump -H` shows what it holds"
                                 : e.hint());
  }
}

}  // namespace sensecf::store
