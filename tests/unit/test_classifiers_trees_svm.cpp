// Unit tests of the XGBoost, random-forest and SVM classifiers and of the
// InputEncoder they (and the NN) share: an easy generated dataset (two continuous
// features on different scales plus one categorical feature) must be learned,
// one seed must give identical probabilities, and save + load into a fresh
// instance must reproduce them bit for bit. The NN has its own tests.
#include <gtest/gtest.h>

#include <fstream>

#include <unistd.h>

#include <cstdint>
#include <cmath>
#include <filesystem>

#include "sensecf/clf/classifier.h"
#include "sensecf/clf/metrics.h"
#include "sensecf/clf/preprocess.h"
#include "sensecf/clf/svm_model.h"
#include "sensecf/clf/xgboost_model.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"

namespace sensecf::clf {
namespace {

namespace fs = std::filesystem;

data::Schema make_schema() {
  data::Schema schema;
  data::Feature a;
  a.name = "a";
  data::Feature b;
  b.name = "b";
  b.unit = "mg/dL";
  data::Feature c;
  c.name = "c";
  c.kind = data::FeatureKind::kCategorical;
  c.categories = {"x", "y", "z"};
  c.allowed = {0, 1, 2};
  schema.features = {a, b, c};
  schema.label = "label";
  return schema;
}

struct Sample {
  data::Matrix x;  // [n, 3]: a ~ N(0, 1), b ~ N(100, 10), c in {0, 1, 2}
  std::vector<int> y;
};

// y = 1 when a + (b - 100) / 10 + effect(c) > 0, with a margin of 0.3 around the
// boundary so that every reasonable classifier gets well above 90% right.
Sample make_sample(std::size_t n, std::uint64_t seed) {
  const double effect[3] = {-1.5, 0.0, 1.5};
  Rng rng(seed);
  Sample s;
  s.x = data::Matrix(n, 3);
  s.y.resize(n);
  for (std::size_t r = 0; r < n;) {
    const double a = rng.normal();
    const double b = rng.normal(100.0, 10.0);
    const auto c = static_cast<int>(rng.below(3));
    const double score = a + (b - 100.0) / 10.0 + effect[c];
    if (std::abs(score) < 0.3) continue;
    s.x.at(r, 0) = a;
    s.x.at(r, 1) = b;
    s.x.at(r, 2) = c;
    s.y[r] = score > 0 ? 1 : 0;
    ++r;
  }
  return s;
}

ClfOptions small_options(const std::string& model) {
  ClfOptions o;
  o.model = model;
  o.seed = 1234;
  o.threads = 1;
  o.xgb_rounds = 60;
  o.rf_trees = 60;
  return o;
}

std::unique_ptr<Classifier> make(const ClfOptions& o) {
  if (o.model == "xgb") return make_xgboost_classifier(o, /*random_forest=*/false);
  if (o.model == "rf") return make_xgboost_classifier(o, /*random_forest=*/true);
  return make_svm_classifier(o);
}

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("sensecf_test_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

class TreesAndSvm : public ::testing::TestWithParam<std::string> {};

TEST_P(TreesAndSvm, LearnsEasyData) {
  const data::Schema schema = make_schema();
  const Sample train = make_sample(400, 1), test = make_sample(300, 2);
  auto clf = make(small_options(GetParam()));
  EXPECT_EQ(clf->kind(), GetParam());
  clf->fit(schema, train.x, train.y);
  const std::vector<double> p = clf->predict_proba(test.x);
  ASSERT_EQ(p.size(), test.y.size());
  for (double v : p) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  const Metrics m = evaluate(test.y, p);
  EXPECT_GT(m.accuracy, 0.9) << GetParam() << ": " << m.line();
  EXPECT_GT(m.auc, 0.95) << GetParam() << ": " << m.line();
}

TEST_P(TreesAndSvm, SameSeedSameProbabilities) {
  const data::Schema schema = make_schema();
  const Sample train = make_sample(300, 3), test = make_sample(100, 4);
  auto first = make(small_options(GetParam()));
  auto second = make(small_options(GetParam()));
  first->fit(schema, train.x, train.y);
  second->fit(schema, train.x, train.y);
  EXPECT_EQ(first->predict_proba(test.x), second->predict_proba(test.x));
}

TEST_P(TreesAndSvm, SaveLoadReproducesProbabilities) {
  const data::Schema schema = make_schema();
  const Sample train = make_sample(300, 5), test = make_sample(100, 6);
  auto clf = make(small_options(GetParam()));
  clf->fit(schema, train.x, train.y);
  TempDir dir("clf_" + GetParam());
  clf->save(dir.path.string());
  auto loaded = make(small_options(GetParam()));
  loaded->load(dir.path.string(), schema);
  EXPECT_EQ(clf->predict_proba(test.x), loaded->predict_proba(test.x));
}

TEST_P(TreesAndSvm, ErrorsBeforeFitAndOnMissingFiles) {
  const data::Schema schema = make_schema();
  auto clf = make(small_options(GetParam()));
  EXPECT_THROW(clf->predict_proba(data::Matrix(1, 3)), Error);
  TempDir dir("empty_" + GetParam());
  EXPECT_THROW(clf->load(dir.path.string(), schema), Error);
}

TEST_P(TreesAndSvm, RejectsWrongWidth) {
  const data::Schema schema = make_schema();
  const Sample train = make_sample(100, 7);
  auto clf = make(small_options(GetParam()));
  clf->fit(schema, train.x, train.y);
  EXPECT_THROW(clf->predict_proba(data::Matrix(2, 4)), Error);
}

INSTANTIATE_TEST_SUITE_P(Clf, TreesAndSvm, ::testing::Values("xgb", "rf", "svm"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// A truncated or empty model.json: a sensecf error naming the file, with
// XGBoost's reason but not its stack trace.
TEST(XgBoost, ADamagedModelFileIsAnErrorWithoutABacktrace) {
  const data::Schema schema = make_schema();
  const Sample train = make_sample(200, 5);
  auto clf = make(small_options("xgb"));
  clf->fit(schema, train.x, train.y);
  TempDir dir("clf_damaged_xgb");
  clf->save(dir.path.string());
  const auto model = dir.path / "model.json";
  std::string text;
  {
    std::ifstream in(model);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (const std::string& damaged : {text.substr(0, text.size() / 2), std::string()}) {
    std::ofstream(model, std::ios::trunc) << damaged;
    try {
      make(small_options("xgb"))->load(dir.path.string(), schema);
      ADD_FAILURE() << "a damaged model loaded";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("model.json is not a model XGBoost can read"), std::string::npos) << m;
      EXPECT_EQ(m.find("Stack trace"), std::string::npos) << m;
      EXPECT_NE(e.hint().find("train the classifier again"), std::string::npos);
    }
  }
}

TEST(RandomForest, SeedChangesTheForest) {
  const data::Schema schema = make_schema();
  const Sample train = make_sample(300, 8), test = make_sample(50, 9);
  ClfOptions o = small_options("rf");
  auto first = make(o);
  o.seed = 99;
  auto second = make(o);
  first->fit(schema, train.x, train.y);
  second->fit(schema, train.x, train.y);
  EXPECT_NE(first->predict_proba(test.x), second->predict_proba(test.x));
}

TEST(Svm, LoadChecksTheSchema) {
  const data::Schema schema = make_schema();
  const Sample train = make_sample(100, 10);
  auto clf = make(small_options("svm"));
  clf->fit(schema, train.x, train.y);
  TempDir dir("svm_schema");
  clf->save(dir.path.string());
  data::Schema renamed = schema;
  renamed.features[0].name = "renamed";
  EXPECT_THROW(make(small_options("svm"))->load(dir.path.string(), renamed), Error);
}

TEST(Svm, NeedsBothClasses) {
  const Sample train = make_sample(20, 11);
  auto clf = make(small_options("svm"));
  EXPECT_THROW(clf->fit(make_schema(), train.x, std::vector<int>(20, 1)), Error);
}

TEST(InputEncoder, StandardisesAndOneHots) {
  const data::Schema schema = make_schema();
  data::Matrix x(4, 3);
  const double rows[4][3] = {{1, 10, 0}, {3, 10, 2}, {5, 10, 1}, {7, 10, 2}};
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t c = 0; c < 3; ++c) x.at(r, c) = rows[r][c];
  InputEncoder enc;
  enc.fit(schema, x);
  ASSERT_EQ(enc.n_inputs(), 5u);  // a, b, c=x, c=y, c=z
  EXPECT_EQ(enc.input_names(), (std::vector<std::string>{"a", "b", "c=x", "c=y", "c=z"}));
  EXPECT_DOUBLE_EQ(enc.features()[0].mean, 4.0);
  EXPECT_DOUBLE_EQ(enc.features()[0].std, std::sqrt(5.0));  // population std of 1,3,5,7
  EXPECT_DOUBLE_EQ(enc.features()[1].std, 1.0);             // constant feature keeps std 1
  EXPECT_EQ(enc.features()[2].offset, 2u);

  data::Matrix q(3, 3);
  const double queries[3][3] = {{4, 10, 1}, {4 + std::sqrt(5.0), 12, 2}, {0, 10, 7}};
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t c = 0; c < 3; ++c) q.at(r, c) = queries[r][c];
  const data::Matrix e = enc.transform(q);
  ASSERT_EQ(e.n_rows, 3u);
  ASSERT_EQ(e.n_cols, 5u);
  const std::vector<double> expected = {
      0.0, 0.0, 0, 1, 0,                  // mean, constant, code 1
      1.0, 2.0, 0, 0, 1,                  // +1 sd, 12 - 10 over std 1, code 2
      -4.0 / std::sqrt(5.0), 0.0, 0, 0, 0  // out-of-range code 7: all-zero block
  };
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(e.values[i], expected[i], 1e-12) << i;
}

TEST(InputEncoder, JsonRoundTrip) {
  const data::Schema schema = make_schema();
  const Sample s = make_sample(50, 12);
  InputEncoder enc;
  enc.fit(schema, s.x);
  const nlohmann::json j = enc.to_json();
  const InputEncoder back = InputEncoder::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(back.n_inputs(), enc.n_inputs());
  EXPECT_EQ(back.input_names(), enc.input_names());
  EXPECT_EQ(back.transform(s.x).values, enc.transform(s.x).values);
  EXPECT_EQ(back.to_json(), j);
}

TEST(InputEncoder, FromJsonNamesTheMissingField) {
  InputEncoder enc;
  enc.fit(make_schema(), make_sample(10, 13).x);
  nlohmann::json j = enc.to_json();
  j["features"][1].erase("std");
  try {
    InputEncoder::from_json(j);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("features[1]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'std'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(InputEncoder::from_json(nlohmann::json::object()), Error);
  nlohmann::json bad_kind = enc.to_json();
  bad_kind["features"][0]["kind"] = "ordinal";
  EXPECT_THROW(InputEncoder::from_json(bad_kind), Error);
}

TEST(InputEncoder, RejectsMismatchedInput) {
  InputEncoder enc;
  EXPECT_THROW(enc.transform(data::Matrix(1, 3)), Error);  // not fitted
  EXPECT_THROW(enc.fit(make_schema(), data::Matrix(5, 2)), Error);
  enc.fit(make_schema(), make_sample(10, 14).x);
  EXPECT_THROW(enc.transform(data::Matrix(1, 4)), Error);
}

}  // namespace
}  // namespace sensecf::clf
