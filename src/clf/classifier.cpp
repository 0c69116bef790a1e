// Classifier factory, [clf] options, and model directories (save/load).
#include "sensecf/clf/classifier.h"

#include <spdlog/fmt/fmt.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "sensecf/clf/nn.h"
#include "sensecf/clf/svm_model.h"
#include "sensecf/clf/xgboost_model.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"

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

namespace {
// A model file's checksum as meta.json's "files" records it.
nlohmann::json file_checksum(const std::filesystem::path& path) {
  return {{"bytes", std::filesystem::file_size(path)}, {"fnv1a64", fnv1a_file_hex(path.string())}};
}

// True for a directory save_model may replace: absent, empty, or holding a model
// (meta.json). Anything else is the user's and is left alone.
bool replaceable(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return true;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  return std::filesystem::is_empty(dir, ec) || std::filesystem::exists(dir / "meta.json", ec);
}
}  // namespace

void save_model(const Classifier& model, const data::Schema& schema, nlohmann::json meta,
                const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path target = fs::path(dir).lexically_normal();
  if (!replaceable(target)) {
    throw Error("'" + dir + "' exists and is not a model directory; not writing a model over it",
                "choose another output directory (--out)");
  }
  // Written beside the target and renamed into place when complete: a failure
  // (disk full, a bad category name, a signal) never leaves half a model.
  const fs::path staging = target.string() + ".partial-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) throw Error("cannot create model directory '" + staging.string() + "': " + ec.message(),
                      "is the parent directory writable?");
  try {
    model.save(staging.string());
    std::ofstream schema_out(staging / "schema.json");
    schema_out << schema.to_json().dump(2) << "\n";
    if (!schema_out) throw Error("cannot write '" + (staging / "schema.json").string() + "'", "is the disk full?");
    schema_out.close();
    meta["kind"] = model.kind();
    meta["format_version"] = kModelFormatVersion;
    nlohmann::json files = nlohmann::json::object();
    for (const auto& entry : fs::directory_iterator(staging)) {
      if (entry.is_regular_file()) files[entry.path().filename().string()] = file_checksum(entry.path());
    }
    meta["files"] = files;
    std::ofstream out(staging / "meta.json");
    out << meta.dump(2) << "\n";
    out.close();
    if (!out) throw Error("cannot write '" + (staging / "meta.json").string() + "'", "is the disk full?");
    fs::remove_all(target, ec);
    if (ec) throw Error("cannot replace '" + dir + "': " + ec.message(), "is it writable?");
    fs::rename(staging, target, ec);
    if (ec) throw Error("cannot move the model into '" + dir + "': " + ec.message());
  } catch (const nlohmann::json::type_error& e) {
    fs::remove_all(staging, ec);
    // Category names and feature names come from the data file: JSON needs UTF-8.
    throw Error("cannot save the model in '" + dir + "': " + e.what(),
                "feature names and category values must be UTF-8 text; re-save the data file as UTF-8");
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

namespace {
// Every file meta.json lists must be there with the bytes it had when saved.
void verify_files(const nlohmann::json& files, const std::string& dir) {
  for (const auto& [name, expected] : files.items()) {
    const std::filesystem::path path = std::filesystem::path(dir) / name;
    const std::string shown = path.string();
    if (!std::filesystem::is_regular_file(path)) {
      throw Error("model file '" + shown + "' is missing (meta.json lists it)",
                  "copy the whole model directory, or retrain the model");
    }
    const auto actual = file_checksum(path);
    if (actual != expected) {
      const bool size_differs = actual.at("bytes") != expected.at("bytes");
      throw Error(fmt::format("model file '{}' is damaged or was edited: {} (meta.json recorded {} bytes, "
                              "checksum {}; found {} bytes, checksum {})",
                              shown, size_differs ? "its size changed" : "its bytes changed",
                              expected.at("bytes").dump(), expected.at("fnv1a64").dump(), actual.at("bytes").dump(),
                              actual.at("fnv1a64").dump()),
                  "restore the directory from a copy, or retrain the model");
    }
  }
}
}  // namespace

bool kind_needs_torch(const std::string& kind) { return kind != "xgb" && kind != "rf" && kind != "svm"; }

std::string saved_kind(const std::string& dir) {
  std::ifstream in(dir + "/meta.json");
  if (!in) return "";
  const auto meta = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object() || !meta.contains("kind") || !meta.at("kind").is_string()) return "";
  return meta.at("kind").get<std::string>();
}

TrainedModel load_model(const std::string& dir) {
  auto read_json = [&](const std::string& name) {
    const std::string path = dir + "/" + name;
    std::ifstream in(path);
    if (!in) throw Error("cannot open '" + path + "'", "is '" + dir + "' a directory written by `sensecf train-clf`?");
    try {
      auto j = nlohmann::json::parse(in);
      if (!j.is_object()) {
        throw Error("'" + path + "' holds a JSON " + std::string(j.type_name()) + ", not an object",
                    "is '" + dir + "' a directory written by `sensecf train-clf`? Retrain to regenerate it");
      }
      return j;
    } catch (const nlohmann::json::parse_error& e) {
      throw Error("'" + path + "' is not valid JSON: " + e.what(), "restore it from a copy, or retrain the model");
    }
  };
  TrainedModel t;
  t.meta = read_json("meta.json");
  const auto version = t.meta.value("format_version", nlohmann::json()).dump();
  if (version != nlohmann::json(kModelFormatVersion).dump()) {
    throw Error(fmt::format("'{}/meta.json' has model format version {}, this build reads \"{}\"", dir,
                            t.meta.contains("format_version") ? version : "(none)", kModelFormatVersion),
                "retrain the model with this version of sensecf");
  }
  try {
    // Models saved before checksums (no "files") are read unchecked.
    if (t.meta.contains("files")) verify_files(t.meta.at("files"), dir);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}/meta.json': the \"files\" checksums are malformed ({})", dir, e.what()),
                "restore the directory from a copy, or retrain the model");
  }
  try {
    t.schema = data::Schema::from_json(read_json("schema.json"));
  } catch (const Error& e) {
    throw Error("'" + dir + "/schema.json': " + e.what(), e.hint());
  }
  ClfOptions options;
  const auto kind = t.meta.value("kind", nlohmann::json());
  options.model = kind.is_string() ? kind.get<std::string>() : "";
  if (options.model != "nn" && options.model != "xgb" && options.model != "rf" && options.model != "svm") {
    throw Error(fmt::format("'{}/meta.json' names classifier kind {}; sensecf reads nn, xgb, rf and svm", dir,
                            kind.is_null() ? "(none)" : kind.dump()),
                "restore meta.json from a copy, or retrain the model");
  }
  t.model = make_classifier(options);
  t.model->load(dir, t.schema);
  return t;
}

}  // namespace sensecf::clf
