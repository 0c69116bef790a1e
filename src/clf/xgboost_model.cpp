// XGBoost classifier ("xgb") and XGBoost random forest ("rf") via the C API.
//
// Every XGBoost call goes through SENSECF_XGB_CHECK, which throws sensecf::Error
// with XGBGetLastError(). Handles live in RAII wrappers. Training uses the `hist`
// tree method (XGBoost 2.x's default; deterministic on CPU for a given seed and
// thread count). Deliberately not here: early stopping, class weights, GPU
// training, native categorical splits (codes are treated as ordered numbers).
#include "sensecf/clf/xgboost_model.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

#define SENSECF_XGB_CHECK(call)                                                                  \
  do {                                                                                           \
    if ((call) != 0) ::sensecf::clf::xgb_check_failed(#call, __FILE__, __LINE__);              \
  } while (0)

namespace sensecf::clf {
namespace {

// XGBoost's message without its stack trace (and its source-file prefix):
// what went wrong, not where inside the library.
std::string xgb_message() {
  std::string m = XGBGetLastError();
  if (const auto trace = m.find("Stack trace:"); trace != std::string::npos) m.erase(trace);
  if (m.rfind('[', 0) == 0) {  // "[12:00:00] /path/src/learner.cc:123: ..."
    const auto colon = m.find(": ", m.find(']'));
    if (colon != std::string::npos && m.find(".cc:") < colon) m.erase(0, colon + 2);
  }
  return std::string(trim(m));
}

[[noreturn]] void xgb_check_failed(const char* expr, const char* file, int line) {
  throw Error(fmt::format("XGBoost call failed at {}:{}: {} -> {}", file, line, expr, xgb_message()));
}

constexpr const char* kModelFile = "model.json";

struct DMatrixDeleter {
  void operator()(void* h) const { XGDMatrixFree(h); }
};
struct BoosterDeleter {
  void operator()(void* h) const { XGBoosterFree(h); }
};
using DMatrix = std::unique_ptr<void, DMatrixDeleter>;
using Booster = std::unique_ptr<void, BoosterDeleter>;

// x: [n, d] doubles -> an XGBoost DMatrix of floats; NaN marks a missing value.
DMatrix make_dmatrix(const data::Matrix& x) {
  std::vector<float> values(x.values.begin(), x.values.end());
  DMatrixHandle h = nullptr;
  SENSECF_XGB_CHECK(XGDMatrixCreateFromMat(values.data(), x.n_rows, x.n_cols,
                                           std::numeric_limits<float>::quiet_NaN(), &h));
  return DMatrix(h);
}

void set_param(BoosterHandle booster, const std::string& name, const std::string& value) {
  SENSECF_XGB_CHECK(XGBoosterSetParam(booster, name.c_str(), value.c_str()));
}

class XGBoostClassifier final : public Classifier {
 public:
  XGBoostClassifier(const ClfOptions& options, bool random_forest)
      : options_(options), random_forest_(random_forest) {}

  std::string kind() const override { return random_forest_ ? "rf" : "xgb"; }

  void fit(const data::Schema& schema, const data::Matrix& x, const std::vector<int>& y) override {
    if (x.n_cols != schema.size()) {
      throw Error(fmt::format("{}: x has {} columns but the schema has {} features", kind(), x.n_cols,
                              schema.size()));
    }
    if (x.n_rows != y.size() || x.n_rows == 0) {
      throw Error(fmt::format("{}: {} rows of x and {} labels; expected the same non-zero number", kind(),
                              x.n_rows, y.size()));
    }
    std::vector<float> labels(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (y[i] != 0 && y[i] != 1) throw Error(fmt::format("{}: label {} at row {} is not 0 or 1", kind(), y[i], i));
      labels[i] = static_cast<float>(y[i]);
    }

    DMatrix train = make_dmatrix(x);
    SENSECF_XGB_CHECK(XGDMatrixSetFloatInfo(train.get(), "label", labels.data(), labels.size()));
    DMatrixHandle cache[] = {train.get()};
    BoosterHandle h = nullptr;
    SENSECF_XGB_CHECK(XGBoosterCreate(cache, 1, &h));
    Booster booster(h);

    set_common_params(h);
    set_param(h, "objective", "binary:logistic");
    set_param(h, "tree_method", "hist");
    // XGBoost's seed is a 32-bit int in its JSON config; fold the 64-bit seed.
    set_param(h, "seed", std::to_string(options_.seed % 2147483647ULL));
    int rounds = 0;
    if (random_forest_) {
      const double d = static_cast<double>(x.n_cols);
      set_param(h, "num_parallel_tree", std::to_string(options_.rf_trees));
      set_param(h, "subsample", "0.632");
      set_param(h, "colsample_bynode", fmt::format("{}", std::sqrt(d) / d));
      set_param(h, "learning_rate", "1");
      set_param(h, "max_depth", std::to_string(options_.rf_max_depth));
      set_param(h, "lambda", "1e-05");  // as XGBRFClassifier: leaves close to plain class frequencies
      rounds = 1;
    } else {
      set_param(h, "eta", fmt::format("{}", options_.xgb_eta));
      set_param(h, "max_depth", std::to_string(options_.xgb_max_depth));
      rounds = options_.xgb_rounds;
    }
    if (rounds < 1)
      throw Error(fmt::format("{}: {} boosting rounds; need at least 1", kind(), rounds),
                  "e.g. --clf.xgb_rounds 200 (the default)");
    spdlog::debug("{}: training on {} rows x {} features, {} round(s)", kind(), x.n_rows, x.n_cols, rounds);
    for (int iter = 0; iter < rounds; ++iter) SENSECF_XGB_CHECK(XGBoosterUpdateOneIter(h, iter, train.get()));

    booster_ = std::move(booster);
    n_features_ = x.n_cols;
  }

  std::vector<double> predict_proba(const data::Matrix& x) const override {
    require_model("predict_proba");
    if (x.n_cols != n_features_) {
      throw Error(fmt::format("{}: x has {} columns, the model was trained on {}", kind(), x.n_cols, n_features_));
    }
    if (x.n_rows == 0) return {};
    DMatrix dmat = make_dmatrix(x);
    bst_ulong n_out = 0;
    const float* out = nullptr;
    SENSECF_XGB_CHECK(XGBoosterPredict(booster_.get(), dmat.get(), /*option_mask=*/0, /*ntree_limit=*/0,
                                       /*training=*/0, &n_out, &out));
    if (n_out != x.n_rows) {
      throw Error(fmt::format("{}: XGBoost returned {} predictions for {} rows", kind(), n_out, x.n_rows));
    }
    return std::vector<double>(out, out + n_out);
  }

  void save(const std::string& dir) const override {
    require_model("save");
    const std::string path = (std::filesystem::path(dir) / kModelFile).string();
    SENSECF_XGB_CHECK(XGBoosterSaveModel(booster_.get(), path.c_str()));
  }

  void load(const std::string& dir, const data::Schema& schema) override {
    const std::string path = (std::filesystem::path(dir) / kModelFile).string();
    if (!std::filesystem::is_regular_file(path)) {
      throw Error(fmt::format("{}: no model file {}", kind(), path),
                  "is this the directory of an xgb/rf classifier written by `sensecf train-clf`?");
    }
    BoosterHandle h = nullptr;
    SENSECF_XGB_CHECK(XGBoosterCreate(nullptr, 0, &h));
    Booster booster(h);
    if (XGBoosterLoadModel(h, path.c_str()) != 0) {
      throw Error(fmt::format("{}: {} is not a model XGBoost can read: {}", kind(), path, xgb_message()),
                  "the file is truncated or damaged; train the classifier again with `sensecf train-clf`");
    }
    set_common_params(h);  // runtime parameters are not part of the saved model
    bst_ulong n_features = 0;
    SENSECF_XGB_CHECK(XGBoosterGetNumFeature(h, &n_features));
    if (n_features != schema.size()) {
      throw Error(fmt::format("{}: {} was trained on {} features but the schema has {}", kind(), path,
                              n_features, schema.size()),
                  "load the classifier with the schema.json saved next to it");
    }
    booster_ = std::move(booster);
    n_features_ = n_features;
  }

 private:
  void set_common_params(BoosterHandle h) const {
    set_param(h, "nthread", std::to_string(options_.threads));  // 0: XGBoost uses all cores
    set_param(h, "verbosity", "0");
  }

  void require_model(const char* what) const {
    if (!booster_) throw Error(fmt::format("{}: {} called before fit() or load()", kind(), what));
  }

  ClfOptions options_;
  bool random_forest_ = false;
  Booster booster_;
  std::size_t n_features_ = 0;
};

}  // namespace

std::unique_ptr<Classifier> make_xgboost_classifier(const ClfOptions& options, bool random_forest) {
  return std::make_unique<XGBoostClassifier>(options, random_forest);
}

}  // namespace sensecf::clf
