// Classifier factory, [clf] options, and model directories (save/load).
#include "sensecf/clf/classifier.h"

#include <spdlog/fmt/fmt.h>

#include <filesystem>
#include <fstream>

#include "sensecf/clf/nn.h"
#include "sensecf/clf/svm_model.h"
#include "sensecf/clf/xgboost_model.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"

namespace sensecf::clf {

namespace {
constexpr const char* kModelFormatVersion = "1";
}

void declare_options(Options& options, ClfOptions& clf) {
  options.add("clf.model", &clf.model, "classifier to train", "model").choices({"nn", "xgb", "rf", "svm"});
  options.add("clf.seed", &clf.seed, "random seed (split, initialisation, shuffling)", "seed");
  options.add("clf.threads", &clf.threads, "CPU threads for training (0: all cores)", "threads").not_hashed();
  options.add("clf.nn_hidden", &clf.nn_hidden, "NN hidden layer widths");
  options.add("clf.nn_max_epochs", &clf.nn_max_epochs, "NN maximum epochs");
  options.add("clf.nn_batch_size", &clf.nn_batch_size, "NN mini-batch size");
  options.add("clf.nn_learning_rate", &clf.nn_learning_rate, "NN Adam learning rate");
  options.add("clf.nn_weight_decay", &clf.nn_weight_decay, "NN Adam weight decay (L2)");
  options.add("clf.nn_dropout", &clf.nn_dropout, "NN dropout after each hidden layer");
  options.add("clf.nn_patience", &clf.nn_patience, "NN early stopping: epochs without validation improvement");
  options.add("clf.nn_validation_fraction", &clf.nn_validation_fraction,
              "NN: share of training rows used for early stopping");
  options.add("clf.xgb_rounds", &clf.xgb_rounds, "XGBoost boosting rounds");
  options.add("clf.xgb_max_depth", &clf.xgb_max_depth, "XGBoost tree depth");
  options.add("clf.xgb_eta", &clf.xgb_eta, "XGBoost learning rate");
  options.add("clf.rf_trees", &clf.rf_trees, "random forest: number of trees");
  options.add("clf.rf_max_depth", &clf.rf_max_depth, "random forest: tree depth");
  options.add("clf.svm_c", &clf.svm_c, "SVM C");
  options.add("clf.svm_gamma", &clf.svm_gamma, "SVM RBF gamma (0: 1/n_inputs)");
  options.add_check([&clf] {
    if (clf.nn_hidden.empty()) throw UsageError("clf.nn_hidden needs at least one layer width");
    for (int h : clf.nn_hidden)
      if (h <= 0) throw UsageError(fmt::format("clf.nn_hidden widths must be positive, got {}", h));
    if (clf.nn_batch_size <= 0 || clf.nn_max_epochs <= 0 || clf.nn_patience <= 0)
      throw UsageError("clf.nn_batch_size, clf.nn_max_epochs and clf.nn_patience must be positive");
    if (!(clf.nn_validation_fraction >= 0 && clf.nn_validation_fraction < 1))
      throw UsageError("clf.nn_validation_fraction must be in [0, 1)");
    if (!(clf.nn_dropout >= 0 && clf.nn_dropout < 1)) throw UsageError("clf.nn_dropout must be in [0, 1)");
    if (clf.xgb_rounds <= 0 || clf.rf_trees <= 0 || clf.xgb_max_depth <= 0 || clf.rf_max_depth <= 0)
      throw UsageError("xgb/rf rounds, trees and depths must be positive");
    if (clf.svm_c <= 0 || clf.svm_gamma < 0) throw UsageError("clf.svm_c must be > 0 and clf.svm_gamma >= 0");
  });
}

std::unique_ptr<Classifier> make_classifier(const ClfOptions& options) {
  if (options.model == "nn") return make_nn_classifier(options);
  if (options.model == "xgb") return make_xgboost_classifier(options, /*random_forest=*/false);
  if (options.model == "rf") return make_xgboost_classifier(options, /*random_forest=*/true);
  if (options.model == "svm") return make_svm_classifier(options);
  throw UsageError("unknown classifier '" + options.model + "'", "use nn, xgb, rf or svm");
}

std::vector<int> predict(const Classifier& clf, const data::Matrix& x) {
  const auto p = clf.predict_proba(x);
  std::vector<int> out(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) out[i] = p[i] > 0.5 ? 1 : 0;
  return out;
}

void save_model(const Classifier& model, const data::Schema& schema, nlohmann::json meta,
                const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create model directory '" + dir + "': " + ec.message());
  model.save(dir);
  std::ofstream(dir + "/schema.json") << schema.to_json().dump(2) << "\n";
  meta["kind"] = model.kind();
  meta["format_version"] = kModelFormatVersion;
  std::ofstream out(dir + "/meta.json");
  out << meta.dump(2) << "\n";
  if (!out) throw Error("cannot write '" + dir + "/meta.json'");
}

TrainedModel load_model(const std::string& dir) {
  auto read_json = [&](const std::string& name) {
    const std::string path = dir + "/" + name;
    std::ifstream in(path);
    if (!in) throw Error("cannot open '" + path + "'", "is '" + dir + "' a directory written by `sensecf train-clf`?");
    try {
      return nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error("'" + path + "' is not valid JSON: " + e.what());
    }
  };
  TrainedModel t;
  t.meta = read_json("meta.json");
  const std::string version = t.meta.value("format_version", "");
  if (version != kModelFormatVersion) {
    throw Error(fmt::format("'{}/meta.json' has model format version '{}', this build reads '{}'", dir, version,
                            kModelFormatVersion),
                "retrain the model with this version of sensecf");
  }
  t.schema = data::Schema::from_json(read_json("schema.json"));
  ClfOptions options;
  options.model = t.meta.value("kind", "");
  t.model = make_classifier(options);
  t.model->load(dir, t.schema);
  return t;
}

}  // namespace sensecf::clf
