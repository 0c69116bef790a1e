// The NN black box: learns a nonlinear rule, is deterministic for a seed,
// survives save/load bit-exactly, and model directories are validated on load.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "sensecf/clf/classifier.h"
#include "sensecf/clf/metrics.h"
#include "sensecf/clf/nn_torch.h"
#include "sensecf/clf/preprocess.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/core/simd.h"
#include "test_util.h"

namespace sensecf::clf {
namespace {

// Two continuous features and one 3-level categorical; y = 1 inside a ring
// whose radius depends on the category (not linearly separable).
struct Problem {
  data::Schema schema;
  data::Matrix x;
  std::vector<int> y;
};

Problem ring(std::size_t n, std::uint64_t seed) {
  Problem p;
  p.schema.features = {test::feature("a"), test::feature("b"), test::feature("c")};
  p.schema.features[2].kind = data::FeatureKind::kCategorical;
  p.schema.features[2].categories = {"x", "y", "z"};
  p.x = data::Matrix(n, 3);
  Rng rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const double a = rng.uniform(-2, 2), b = rng.uniform(-2, 2);
    const int c = static_cast<int>(rng.below(3));
    p.x.at(i, 0) = a * 10 + 50;  // unstandardised on purpose
    p.x.at(i, 1) = b;
    p.x.at(i, 2) = c;
    p.y.push_back(a * a + b * b < 1.0 + 0.5 * c ? 1 : 0);
  }
  return p;
}

ClfOptions fast_nn() {
  ClfOptions o;
  o.model = "nn";
  o.seed = 5;
  o.threads = 1;
  o.nn_max_epochs = 120;
  return o;
}

TEST(Nn, LearnsANonlinearRule) {
  const auto train = ring(1500, 1), test = ring(500, 2);
  auto nn = make_classifier(fast_nn());
  nn->fit(train.schema, train.x, train.y);
  const auto m = evaluate(test.y, nn->predict_proba(test.x));
  EXPECT_GT(m.accuracy, 0.9) << m.line();
  EXPECT_GT(m.auc, 0.95) << m.line();
}

TEST(Nn, DeterministicForASeed) {
  const auto train = ring(400, 1), test = ring(100, 2);
  auto o = fast_nn();
  o.nn_max_epochs = 15;
  auto a = make_classifier(o), b = make_classifier(o);
  a->fit(train.schema, train.x, train.y);
  b->fit(train.schema, train.x, train.y);
  EXPECT_EQ(a->predict_proba(test.x), b->predict_proba(test.x));
  o.seed = 6;
  auto c = make_classifier(o);
  c->fit(train.schema, train.x, train.y);
  EXPECT_NE(a->predict_proba(test.x), c->predict_proba(test.x));
}

TEST(Nn, PredictionsDoNotDependOnTheBatch) {
  // Small batches take the plain C++ float64 loop, large ones the float32
  // LibTorch forward: the same row gets the same probability up to float32
  // rounding either way.
  const auto train = ring(400, 1), test = ring(300, 2);
  auto o = fast_nn();
  o.nn_max_epochs = 10;
  auto nn = make_classifier(o);
  nn->fit(train.schema, train.x, train.y);
  const auto batch = nn->predict_proba(test.x);  // 300 rows: LibTorch path
  ASSERT_EQ(batch.size(), 300u);
  for (std::size_t i = 0; i < 300; i += 7) {
    const auto one = nn->predict_proba(test.x.rows({i}));  // 1 row: C++ path
    EXPECT_NEAR(one[0], batch[i], 1e-6) << "row " << i;
  }
  const auto small = nn->predict_proba(test.x.rows({0, 1, 2, 3, 4, 5, 6, 7}));
  for (std::size_t i = 0; i < small.size(); ++i) EXPECT_NEAR(small[i], batch[i], 1e-6);
}

// The small-batch path (register-blocked, vectorised) must give exactly what
// the plain float64 loop over nn.json's weights gives: b + sum of w * a over the
// non-zero inputs in order, ReLU, sigmoid, at every SIMD level. Layer widths
// 45 and 13 take every chunk size of the kernels (64, 32, 8, 4 and single outputs).
TEST(Nn, SmallBatchesAreThePlainFloat64LoopBitForBit) {
  const auto train = ring(400, 1), test = ring(64, 3);
  auto o = fast_nn();
  o.nn_max_epochs = 5;
  o.nn_hidden = {45, 13};
  auto nn = make_classifier(o);
  nn->fit(train.schema, train.x, train.y);
  test::TempDir dir;
  const auto model_dir = dir.file("model");
  save_model(*nn, train.schema, {}, model_dir);
  nlohmann::json meta;
  std::ifstream(model_dir + "/nn.json") >> meta;
  const InputEncoder encoder = InputEncoder::from_json(meta.at("encoder"));

  data::Matrix x = test.x;
  x.at(5, 2) = 7;    // a code out of range: an all-zero one-hot block
  x.at(6, 1) = 0.0;  // an exact zero input
  const data::Matrix in = encoder.transform(x);
  std::vector<double> want;
  for (std::size_t r = 0; r < x.n_rows; ++r) {
    std::vector<double> a(in.row(r), in.row(r) + in.n_cols);
    const auto& layers = meta.at("layers");
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const auto w = layers[l].at("weight").get<std::vector<std::vector<double>>>();  // [n_out][n_in]
      std::vector<double> h = layers[l].at("bias").get<std::vector<double>>();
      for (std::size_t out = 0; out < h.size(); ++out)
        for (std::size_t i = 0; i < a.size(); ++i)
          if (a[i] != 0.0) h[out] += w[out][i] * a[i];
      if (l + 1 < layers.size())
        for (double& v : h) v = std::max(0.0, v);
      a = h;
    }
    want.push_back(1.0 / (1.0 + std::exp(-a[0])));
  }
  // Every SIMD level this CPU has (core/simd.h) gives these bits.
  for (const SimdLevel level : {SimdLevel::kBaseline, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    const SimdLevel used = set_simd_level(level);
    const std::vector<double> got = nn->predict_proba(x);  // 64 rows: the small-batch path
    ASSERT_EQ(got.size(), x.n_rows);
    for (std::size_t r = 0; r < x.n_rows; ++r) EXPECT_EQ(got[r], want[r]) << simd_level_name(used) << ", row " << r;
  }
  set_simd_level(SimdLevel::kAvx512);
}

TEST(Nn, ModelDirectoryRoundTripsExactly) {
  const auto train = ring(400, 1), test = ring(100, 2);
  auto o = fast_nn();
  o.nn_max_epochs = 10;
  auto nn = make_classifier(o);
  nn->fit(train.schema, train.x, train.y);
  test::TempDir dir;
  const auto model_dir = dir.file("model");
  save_model(*nn, train.schema, {{"note", "test"}}, model_dir);
  const TrainedModel loaded = load_model(model_dir);
  EXPECT_EQ(loaded.model->kind(), "nn");
  EXPECT_EQ(loaded.schema.names(), train.schema.names());
  EXPECT_EQ(loaded.meta.at("note"), "test");
  EXPECT_EQ(loaded.model->predict_proba(test.x), nn->predict_proba(test.x));
}

TEST(Nn, BrokenModelDirectoriesAreRefused) {
  test::TempDir dir;
  EXPECT_THROW_WITH(load_model(dir.file("none")), Error, "meta.json");
  const auto d = dir.file("m");
  std::filesystem::create_directories(d);
  std::ofstream(d + "/meta.json") << "{not json";
  EXPECT_THROW_WITH(load_model(d), Error, "not valid JSON");
  std::ofstream(d + "/meta.json") << R"({"kind": "nn", "format_version": "0"})";
  EXPECT_THROW_WITH(load_model(d), Error, "format version \"0\"");
  std::ofstream(d + "/meta.json") << R"({"kind": "nn", "format_version": "1"})";
  std::ofstream(d + "/schema.json") << R"({"label": "y", "group": "", "features": [{"name": "a"}]})";
  EXPECT_THROW_WITH(load_model(d), Error, "schema JSON is malformed");
}

// A diverged network (NaN weights) is not saved; a nn.pt with NaN weights
// (from an older sensecf, without checksums) is refused at load.
TEST(Nn, NonFiniteWeightsAreRefusedAtSaveAndLoad) {
  const auto train = ring(200, 1);
  auto o = fast_nn();
  o.nn_max_epochs = 2;
  test::TempDir dir;
  const auto good = dir.file("good");
  {
    auto nn = make_classifier(o);
    nn->fit(train.schema, train.x, train.y);
    save_model(*nn, train.schema, {}, good);
    torch::NoGradGuard no_grad;
    nn_module(*nn).net->parameters()[0][0][0] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW_WITH(save_model(*nn, train.schema, {}, dir.file("diverged")), Error, "training diverged");
    EXPECT_FALSE(std::filesystem::exists(dir.file("diverged")));
  }
  const TrainedModel loaded = load_model(good);
  {
    torch::NoGradGuard no_grad;
    nn_module(*loaded.model).net->parameters()[1][0] = std::numeric_limits<float>::infinity();
  }
  torch::save(nn_module(*loaded.model).net, good + "/nn.pt");
  EXPECT_THROW_WITH(load_model(good), Error, "is damaged or was edited");  // the checksum
  auto meta = nlohmann::json::parse(std::ifstream(good + "/meta.json"));
  meta.erase("files");
  std::ofstream(good + "/meta.json") << meta.dump();
  EXPECT_THROW_WITH(load_model(good), Error, "nn.pt' has a non-finite bias in layer 1: the model would predict NaN");
}

}  // namespace
}  // namespace sensecf::clf
