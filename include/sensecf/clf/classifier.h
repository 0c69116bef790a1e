// The black-box classifier interface and its factory.
//
// Every classifier answers predict_proba on a batch: P(y = 1 | x) per row, where
// x holds raw feature values as in Dataset::x (categorical codes included; each
// implementation does its own encoding). The NN (LibTorch MLP) is the black box
// f that the counterfactual methods explain; XGBoost, random forest (XGBoost's
// random-forest mode) and SVM (libsvm, Platt-scaled probabilities) are the other
// classifiers of the paper's Fig. 1.
//
// A trained classifier is a directory: model file(s), schema.json and
// meta.json (kind, options, provenance, test metrics).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf {
class Options;
}

namespace sensecf::clf {

struct ClfOptions {
  std::string model = "nn";  // nn | xgb | rf | svm
  std::uint64_t seed = 42;
  int threads = 0;           // 0 = all cores of this rank
  // nn
  std::vector<int> nn_hidden = {64, 32};
  int nn_max_epochs = 300;
  int nn_batch_size = 64;
  double nn_learning_rate = 1e-3;
  double nn_weight_decay = 1e-4;
  double nn_dropout = 0.1;
  int nn_patience = 20;              // epochs without validation-loss improvement
  double nn_validation_fraction = 0.15;
  // xgb / rf
  int xgb_rounds = 200;
  int xgb_max_depth = 4;
  double xgb_eta = 0.1;
  int rf_trees = 200;
  int rf_max_depth = 8;
  // svm
  double svm_c = 1.0;
  double svm_gamma = 0.0;  // 0 = 1 / n_inputs (libsvm's default)
};

void declare_options(Options& options, ClfOptions& clf);

class Classifier {
 public:
  virtual ~Classifier() = default;
  virtual std::string kind() const = 0;
  // Trains on x: [n, d] with labels y. `schema` says which columns are categorical.
  virtual void fit(const data::Schema& schema, const data::Matrix& x, const std::vector<int>& y) = 0;
  // P(y = 1) for each row of x: [n, d].
  virtual std::vector<double> predict_proba(const data::Matrix& x) const = 0;
  // Writes the model file(s) into `dir` (the directory exists).
  virtual void save(const std::string& dir) const = 0;
  virtual void load(const std::string& dir, const data::Schema& schema) = 0;
  // Per-epoch training curve of the last fit(): {epoch, mean training loss,
  // validation loss}; empty for models without epochs.
  struct Epoch {
    int epoch = 0;
    double loss = 0, val_loss = 0;
  };
  virtual std::vector<Epoch> training_curve() const { return {}; }
};

std::unique_ptr<Classifier> make_classifier(const ClfOptions& options);

// A trained classifier directory: the model, its schema and meta.json.
struct TrainedModel {
  std::unique_ptr<Classifier> model;
  data::Schema schema;
  nlohmann::json meta;  // kind, options, provenance, metrics
};
// Writes model files, schema.json and meta.json (meta gains "kind",
// "format_version" and "files": each other file's size and FNV-1a checksum)
// into a staging directory beside `dir`, then replaces `dir` with it: a failure
// leaves no half-written model. Refuses a `dir` that exists and is neither
// empty nor a model directory.
void save_model(const Classifier& model, const data::Schema& schema, nlohmann::json meta,
                const std::string& dir);
// Loads a directory written by save_model; refuses unknown kinds and format
// versions, files whose size or checksum differ from meta.json's "files" (not
// checked for models saved before checksums), and bad schemas or weights.
TrainedModel load_model(const std::string& dir);

// Whether a classifier kind needs LibTorch: every kind but xgb, rf and svm
// (nn, and names this build does not know).
bool kind_needs_torch(const std::string& kind);
// The "kind" in `dir`/meta.json without loading or checking anything else; ""
// when the file is missing or unreadable, not JSON or has no string "kind".
// The front-end `sensecf` uses it to decide which binary runs a command.
std::string saved_kind(const std::string& dir);

// 0/1 predictions: 1 where P(y=1) > 0.5.
std::vector<int> predict(const Classifier& clf, const data::Matrix& x);

}  // namespace sensecf::clf
