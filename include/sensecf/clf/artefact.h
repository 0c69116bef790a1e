// The trained-model artefact: one contract for "a trained classifier and the
// rows it was trained on", written by `sensecf train-clf` and by the sweep's
// train_clf task, read by `explain`, `evaluate-cf` and the sweep's generate
// task.
//
// A model directory (clf::save_model) whose meta.json also holds:
//   data_settings  every data.* option as text (data.source, data.path made
//                  absolute, label, group, categorical, immutable, drop,
//                  missing, test_fraction): the rows can be read again without
//                  repeating a flag; flags given on the command line win
//   split          {seed, test_fraction}: the patient-level split
//   scenario       {kind, fraction, removed_class0, removed_class1}
//   train_rows, test_rows, data (the data file as read)
//   data_identity  {rows, patients: [[id, rows], ...] in file order, values:
//                  FNV-1a of every label and feature value}: explain and
//                  evaluate-cf refuse a data file whose rows are not these
//                  (another file, reordered rows, changed values), saying what
//                  differs
//   files          {name: {bytes, fnv1a64}} of every other file (clf::save_model):
//                  load_model refuses a file that is missing, cut or edited
//   provenance and whatever the writer adds (test_metrics, task, ...)
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sensecf/clf/classifier.h"
#include "sensecf/data/csv.h"

namespace sensecf {
class Options;
}

namespace sensecf::clf {

struct TrainingSetup {
  std::map<std::string, std::string> data_settings;  // "data.path" -> "/abs/cohort.csv", ...
  std::uint64_t split_seed = 0;
  double test_fraction = 0.2;
  std::string scenario = "full";
  double scenario_fraction = 0.0;
  std::size_t removed_class0 = 0, removed_class1 = 0;
  std::size_t train_rows = 0, test_rows = 0;
  std::string data_source;  // the file the rows were read from
  nlohmann::json data_identity;  // data_identity(dataset) of the rows as read; null in older models
};

// What identifies a data set's rows: their number, the patient of each row
// (run-length encoded, in file order) and a hash of every label and value.
nlohmann::json data_identity(const data::Dataset& data);
// Throws an Error that says what differs when `data` is not the data set
// `stored` (a data_identity) describes; `model_dir` names the model.
void check_data_identity(const nlohmann::json& stored, const data::Dataset& data, const std::string& model_dir);

// The data.* options as the text `Options` parses back, data.path absolute.
std::map<std::string, std::string> data_settings(const data::DataOptions& options);

// Writes the model directory with the setup (and `extra`: provenance, metrics, ...) in meta.json.
void save_trained_model(const Classifier& model, const data::Schema& schema, const TrainingSetup& setup,
                        nlohmann::json extra, const std::string& dir);

// The setup saved with a model; throws an Error naming the directory when
// meta.json lacks it (a model from an older sensecf).
TrainingSetup training_setup(const TrainedModel& model, const std::string& dir);

// A trained model together with its rows: the data file is read again and
// split exactly as at training time (seed, test fraction, scenario from the
// artefact).
struct ModelAndData {
  TrainedModel model;
  data::Dataset data;                   // schema = the model's (bounds learned from its training rows)
  std::vector<std::size_t> train_rows;  // the rows the model was trained on
  std::vector<std::size_t> test_rows;
};

// Sets every data.* option still at its default (no config file, no flag) to
// the value saved with the model: the user's flags win. Returns "key = value"
// of each setting applied. Call after Options::parse, before reading data.
std::vector<std::string> apply_data_settings(const TrainingSetup& setup, Options& options, const std::string& model_dir);

// The model in `model_dir` with its rows. `data_options` are the effective
// data options (bound to `options`, the artefact's data_settings applied
// under the user's flags by apply_data_settings).
ModelAndData load_model_and_data(const std::string& model_dir, Options& options, const data::DataOptions& data_options);

}  // namespace sensecf::clf
