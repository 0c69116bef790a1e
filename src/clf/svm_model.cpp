// SVM classifier: libsvm C-SVC, RBF kernel, Platt-scaled probabilities.
//
// Encoded inputs are rounded to 8 significant digits before training. libsvm's
// svm_save_model writes support-vector values with "%.8g", so without the rounding
// a saved and reloaded model would predict slightly different probabilities; with
// it, the support vectors survive the text file bit for bit (and the change to
// the inputs, ~1e-8 relative, is far below any measurement noise).
//
// libsvm's global state is handled here: its printing is silenced, and its Platt
// cross-validation draws folds with rand(), which fit() seeds with srand(seed)
// immediately before svm_train. rand() is process-global, so two SVMs trained at
// the same time on different threads are not reproducible; the sweep runs one
// task per rank, where this holds. Deliberately not here: other kernels, class
// weights, grid search over C and gamma.
#include "sensecf/clf/svm_model.h"

#include <libsvm/svm.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sensecf/clf/preprocess.h"
#include "sensecf/core/error.h"

namespace sensecf::clf {
namespace {

constexpr const char* kModelFile = "svm.model";
constexpr const char* kEncoderFile = "encoder.json";

void print_nothing(const char*) {}

struct ModelDeleter {
  void operator()(svm_model* m) const { svm_free_and_destroy_model(&m); }
};
using ModelPtr = std::unique_ptr<svm_model, ModelDeleter>;

// The value libsvm will read back after writing v with "%.8g".
double round_to_model_file_precision(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.8g", v);
  return std::strtod(text, nullptr);
}

// One row of encoded inputs as libsvm's sparse nodes (1-based indices, zeros
// left out, terminated by index -1), appended to `out`.
void append_nodes(const double* row, std::size_t n_inputs, std::vector<svm_node>& out) {
  for (std::size_t c = 0; c < n_inputs; ++c) {
    if (row[c] != 0.0) out.push_back(svm_node{static_cast<int>(c) + 1, row[c]});
  }
  out.push_back(svm_node{-1, 0.0});
}

class SvmClassifier final : public Classifier {
 public:
  explicit SvmClassifier(const ClfOptions& options) : options_(options) {
    svm_set_print_string_function(print_nothing);
  }

  std::string kind() const override { return "svm"; }

  void fit(const data::Schema& schema, const data::Matrix& x, const std::vector<int>& y) override {
    if (x.n_rows != y.size() || x.n_rows == 0) {
      throw Error(fmt::format("svm: {} rows of x and {} labels; expected the same non-zero number", x.n_rows,
                              y.size()));
    }
    std::vector<double> labels(y.size());
    std::size_t n_pos = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (y[i] != 0 && y[i] != 1) throw Error(fmt::format("svm: label {} at row {} is not 0 or 1", y[i], i));
      labels[i] = y[i];
      n_pos += static_cast<std::size_t>(y[i]);
    }
    if (n_pos == 0 || n_pos == y.size()) {
      throw Error(fmt::format("svm: the training set has only label {} ({} rows); an SVM needs both classes",
                              n_pos == 0 ? 0 : 1, y.size()),
                  "check the scenario's removal fraction");
    }

    InputEncoder encoder;
    encoder.fit(schema, x);
    data::Matrix inputs = encoder.transform(x);  // [n, n_inputs]
    for (double& v : inputs.values) v = round_to_model_file_precision(v);

    // The trained model points into these nodes: they live as long as the model.
    std::vector<svm_node> nodes;
    std::vector<std::size_t> starts(inputs.n_rows);
    for (std::size_t r = 0; r < inputs.n_rows; ++r) {
      starts[r] = nodes.size();
      append_nodes(inputs.row(r), inputs.n_cols, nodes);
    }
    std::vector<svm_node*> rows(inputs.n_rows);
    for (std::size_t r = 0; r < inputs.n_rows; ++r) rows[r] = nodes.data() + starts[r];

    svm_problem problem{};
    problem.l = static_cast<int>(inputs.n_rows);
    problem.y = labels.data();
    problem.x = rows.data();

    svm_parameter param{};
    param.svm_type = C_SVC;
    param.kernel_type = RBF;
    param.degree = 3;
    param.gamma = options_.svm_gamma > 0.0 ? options_.svm_gamma : 1.0 / static_cast<double>(inputs.n_cols);
    param.coef0 = 0.0;
    param.cache_size = 200;  // MB
    param.eps = 1e-3;
    param.C = options_.svm_c;
    param.nr_weight = 0;
    param.weight_label = nullptr;
    param.weight = nullptr;
    param.nu = 0.5;
    param.p = 0.1;
    param.shrinking = 1;
    param.probability = 1;
    if (const char* problem_text = svm_check_parameter(&problem, &param)) {
      throw Error(fmt::format("svm: libsvm rejects the parameters (C={}, gamma={}): {}", param.C, param.gamma,
                              problem_text),
                  "the SVM needs C > 0 and gamma >= 0 (0 = 1 / n_inputs)");
    }

    spdlog::debug("svm: training on {} rows x {} inputs, C={}, gamma={}", inputs.n_rows, inputs.n_cols, param.C,
                  param.gamma);
    // libsvm's Platt cross-validation shuffles with rand(): seed it for reproducibility.
    std::srand(static_cast<unsigned>(options_.seed));
    ModelPtr model(svm_train(&problem, &param));
    if (!model) throw Error("svm: svm_train returned no model");

    // svm_free_and_destroy_model must run before the nodes go away: order matters.
    model_.reset();
    nodes_ = std::move(nodes);
    rows_ = std::move(rows);
    model_ = std::move(model);
    encoder_ = std::move(encoder);
    positive_index_ = find_positive_index();
  }

  std::vector<double> predict_proba(const data::Matrix& x) const override {
    if (!model_) throw Error("svm: predict_proba called before fit() or load()");
    const data::Matrix inputs = encoder_.transform(x);  // [n, n_inputs]; checks the width
    std::vector<double> p(inputs.n_rows);
    std::vector<svm_node> nodes;
    double prob[2] = {0.0, 0.0};
    for (std::size_t r = 0; r < inputs.n_rows; ++r) {
      nodes.clear();
      append_nodes(inputs.row(r), inputs.n_cols, nodes);
      svm_predict_probability(model_.get(), nodes.data(), prob);
      p[r] = prob[positive_index_];  // prob[i] belongs to model->label[i]
    }
    return p;
  }

  void save(const std::string& dir) const override {
    if (!model_) throw Error("svm: save called before fit() or load()");
    const std::string model_path = (std::filesystem::path(dir) / kModelFile).string();
    if (svm_save_model(model_path.c_str(), model_.get()) != 0) {
      throw Error(fmt::format("svm: could not write {}: {}", model_path, std::strerror(errno)),
                  "is the directory writable and the disk not full?");
    }
    const std::string encoder_path = (std::filesystem::path(dir) / kEncoderFile).string();
    std::ofstream out(encoder_path);
    out << encoder_.to_json().dump(2) << "\n";
    if (!out)
      throw Error(fmt::format("svm: could not write {}", encoder_path),
                  "is the directory writable and the disk not full?");
  }

  void load(const std::string& dir, const data::Schema& schema) override {
    const std::string model_path = (std::filesystem::path(dir) / kModelFile).string();
    const std::string encoder_path = (std::filesystem::path(dir) / kEncoderFile).string();
    for (const std::string& path : {model_path, encoder_path}) {
      if (!std::filesystem::is_regular_file(path)) {
        throw Error(fmt::format("svm: no file {}", path),
                    "an SVM directory holds svm.model and encoder.json, both written by save()");
      }
    }
    ModelPtr model(svm_load_model(model_path.c_str()));
    if (!model) throw Error(fmt::format("svm: libsvm could not read {}", model_path), "is the file truncated?");
    if (svm_get_svm_type(model.get()) != C_SVC || svm_get_nr_class(model.get()) != 2 ||
        !svm_check_probability_model(model.get())) {
      throw Error(fmt::format("svm: {} is not a two-class C-SVC model with probability estimates", model_path),
                  "train it with `sensecf train-clf --clf.model svm`");
    }

    std::ifstream in(encoder_path);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(fmt::format("svm: {} is not valid JSON: {}", encoder_path, e.what()),
                  "the file is truncated or damaged; train the classifier again with `sensecf train-clf`");
    }
    InputEncoder encoder = InputEncoder::from_json(j);
    if (encoder.n_features() != schema.size()) {
      throw Error(fmt::format("svm: {} encodes {} features but the schema has {}", encoder_path,
                              encoder.n_features(), schema.size()),
                  "load the classifier with the schema.json saved next to it");
    }
    for (std::size_t f = 0; f < schema.size(); ++f) {
      if (encoder.features()[f].name != schema.features[f].name) {
        throw Error(fmt::format("svm: feature {} is '{}' in {} but '{}' in the schema", f,
                                encoder.features()[f].name, encoder_path, schema.features[f].name),
                    "load the classifier with the schema.json saved next to it");
      }
    }

    model_ = std::move(model);  // owns its support vectors (free_sv = 1)
    nodes_.clear();
    rows_.clear();
    encoder_ = std::move(encoder);
    positive_index_ = find_positive_index();
  }

 private:
  std::size_t find_positive_index() const {
    int labels[2] = {0, 0};
    svm_get_labels(model_.get(), labels);  // in order of first appearance in training
    if (labels[0] == 1) return 0;
    if (labels[1] == 1) return 1;
    throw Error(fmt::format("svm: the model's labels are {} and {}; expected 0 and 1", labels[0], labels[1]),
                "train it with `sensecf train-clf --clf.model svm`");
  }

  ClfOptions options_;
  InputEncoder encoder_;
  std::vector<svm_node> nodes_;  // training nodes a trained (not loaded) model points into
  std::vector<svm_node*> rows_;
  ModelPtr model_;  // declared last: destroyed first, before the nodes
  std::size_t positive_index_ = 0;
};

}  // namespace

std::unique_ptr<Classifier> make_svm_classifier(const ClfOptions& options) {
  return std::make_unique<SvmClassifier>(options);
}

}  // namespace sensecf::clf
