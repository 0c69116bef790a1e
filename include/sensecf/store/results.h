// The sweep's results file: what one HDF5 file holds, how rank 0 writes it and
// how `sensecf report` (or h5py/pandas, without sensecf) reads it back.
//
// Layout (format_version 1; every table a chunked, extendable compound dataset
// with fixed-length strings, see store/h5file.h):
//   /                       attributes: format_version, sensecf_version, git_sha,
//                           config (effective INI text), config_hash, started,
//                           mpi_size, hosts, slurm_job_id
//   /tasks                  one row per finished attempt of a task (done or failed)
//   /metrics/cf             CF metrics per generate task and factual class
//   /metrics/clf            classifier test metrics (train_clf, augment, fig1 tasks)
//   /metrics/train          training curves (epoch, loss, validation loss)
//   /metrics/usage          what a generate task of a remote LLM spent: requests
//                           sent, cache hits, retries, failures, tokens, cost
//                           (files without it read as empty)
//   /counterfactuals/<key>  the CFs of one generate task: datasets query_row [n],
//                           factual [n, d], counterfactual [n, d] (NaN rows: none
//                           found), target [n], probability [n] (f's P(y=1) at the
//                           CF), valid [n], found [n], answer [n] (the LLM's raw
//                           answer text, variable-length UTF-8; empty for
//                           baselines); attributes features (JSON list), method,
//                           scenario, seed, purpose
// Column lists are in results.cpp next to the writers; docs/results-format.md
// describes every column for users.
//
// Not here: when rows are written (the sweep coordinator), the journal that
// makes them durable (sweep/journal.h), tables and figures (report/).
#pragma once

#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sensecf::store {

inline constexpr const char* kResultsFormatVersion = "1";

// One finished attempt of one task.
struct TaskRecord {
  std::string key;       // 16 hex digits: hash of kind + parameters
  std::string kind;      // prepare | train_clf | generate | augment | fig1 | probe | ...
  std::string label;     // human-readable, e.g. "generate nice positive seed=1"
  std::string method;    // CF method, or "" for tasks without one
  std::string scenario;  // full | positive | negative | dual, or ""
  std::string model;     // classifier kind, or ""
  long long seed = 0;
  double ratio = 0;      // augmentation ratio (augment), reduction (fig1), else 0
  std::string status;    // done | failed
  long long attempt = 1; // 1-based
  long long rank = 0;    // MPI rank that ran it
  std::string host;
  std::string device;    // "cpu:4" (threads) or "cuda:0"
  double started = 0;    // Unix time, seconds
  double seconds = 0;    // wall time of the attempt
  std::string message;   // failure message (truncated to the column width)
};

struct CfMetricRow {
  std::string key, method, scenario, purpose;  // purpose: table3 | augment
  long long seed = 0;
  long long factual_class = -1;  // -1: all queries; 0 / 1: queries f predicts as that class
  long long n_queries = 0, n_cfs = 0;
  // validity: share of ALL queries whose (first) CF is valid; coverage: share of
  // queries with a CF returned (docs/cf-metrics.md).
  double coverage = 0, validity = 0, distance = 0, sparsity = 0, plausibility = 0, ynn = 0, knn_distance = 0,
         violations = 0, redundancy = 0, seconds_per_query = 0;
  // Share of the returned CFs that are valid; LLM answers parsed / given (NaN:
  // not applicable, a baseline). NaN too when read from a file that predates them.
  double validity_returned = std::numeric_limits<double>::quiet_NaN();
  double parse_rate = std::numeric_limits<double>::quiet_NaN();
};

struct ClfMetricRow {
  std::string key, kind, model, method, scenario;  // kind: train_clf | augment | fig1
  long long seed = 0;
  double fraction = 0;   // share of the scarce class(es) removed (train_clf, augment); fig1: reduction
  double ratio = 0;      // augmentation ratio (augment), else 0
  long long n_train = 0; // training rows, CFs included
  long long n_added = 0; // CFs added (augment)
  long long n_wanted = 0;// CFs the ratio asked for (augment); n_added < n_wanted when too few were valid
  double accuracy = 0, precision = 0, recall = 0, f1 = 0, auc = 0;
};

struct TrainRow {
  std::string key, kind;
  long long step = 0;  // epoch for the NN
  double loss = 0, val_loss = 0;
};

// What one generate task of a remote LLM spent (remote::Usage).
struct UsageRow {
  std::string key, method, scenario, purpose;
  long long seed = 0;
  long long requests = 0;    // HTTP requests sent, retries included
  long long answers = 0;     // answers received or read from the cache
  long long cache_hits = 0;
  long long retries = 0;
  long long failures = 0;    // requests given up on after the last retry
  long long prompt_tokens = 0, completion_tokens = 0;  // the server's count, cache hits excluded
  double cost_usd = 0;       // those tokens at lm.price_in / lm.price_out
  double seconds = 0;        // wall time waiting for answers
};

// The CFs of one generate task, one row per query (the first CF of each).
struct CfArrays {
  std::string key, method, scenario, purpose;
  long long seed = 0;
  std::vector<std::string> features;
  std::size_t n = 0, d = 0;
  std::vector<long long> query_row;    // [n] row of the factual in the data set
  std::vector<double> factual;         // [n * d]
  std::vector<double> counterfactual;  // [n * d], NaN where none was found
  std::vector<long long> target;       // [n]
  std::vector<double> probability;     // [n] f's P(y=1) at the CF (NaN: none)
  std::vector<long long> valid;        // [n] 1: f predicts target at the CF
  std::vector<long long> found;        // [n] 1: the method returned a CF
  std::vector<std::string> answer;     // [n] the LLM's raw answer behind the CF (the first answer when
                                       // none parsed); "" for baselines and queries without an answer
  std::vector<std::string> patient;    // [n] the factual row's patient (group) id; empty in older files
  // The split's schema (data::Schema::to_json): category names of the codes,
  // bounds learned from the training rows, immutables, units; "" in older files.
  std::string schema;
};

// Everything a task produces for the results file. Travels rank → rank 0 and
// into the journal as JSON (to_json / from_json are exact for doubles, NaN
// included).
struct TaskOutput {
  std::vector<CfMetricRow> cf;
  std::vector<ClfMetricRow> clf;
  std::vector<TrainRow> train;
  std::vector<UsageRow> usage;
  std::vector<CfArrays> counterfactuals;
  nlohmann::json artifacts = nlohmann::json::object();  // name -> path under the workdir
};

nlohmann::json to_json(const TaskRecord& r);
TaskRecord task_record_from_json(const nlohmann::json& j);
nlohmann::json to_json(const TaskOutput& out);
TaskOutput task_output_from_json(const nlohmann::json& j);

// Root attributes.
struct Provenance {
  std::string sensecf_version, git_sha, config, config_hash, started, hosts, slurm_job_id;
  long long mpi_size = 1;
};

// Rank 0's writer. Appends to every table and flushes on request; the file is
// valid for readers after every flush().
class ResultsWriter {
 public:
  // A new file (truncating any existing one) with the provenance attributes and
  // empty tables.
  static ResultsWriter create(const std::string& path, const Provenance& provenance);
  // An existing file written by create(); throws when it is not a results file
  // or has another format version.
  static ResultsWriter open(const std::string& path);
  ResultsWriter(ResultsWriter&&) noexcept;
  ResultsWriter& operator=(ResultsWriter&&) noexcept;
  ~ResultsWriter();

  void append(const TaskRecord& task, const TaskOutput& output);
  void append(const std::vector<std::pair<TaskRecord, TaskOutput>>& batch);
  void flush();
  const std::string& path() const;

 private:
  struct Impl;
  explicit ResultsWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads a whole results file (they are small: rows, not tensors).
struct Results {
  Provenance provenance;
  std::string format_version;
  std::vector<TaskRecord> tasks;
  std::vector<CfMetricRow> cf;
  std::vector<ClfMetricRow> clf;
  std::vector<TrainRow> train;
  std::vector<UsageRow> usage;
  std::vector<CfArrays> counterfactuals;
};
Results read_results(const std::string& path);

}  // namespace sensecf::store
