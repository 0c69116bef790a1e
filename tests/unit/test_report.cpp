// `sensecf report`: tables and figure data from a hand-made results file whose
// expected numbers are worked out here by hand (mean ± sd over two seeds with
// n − 1, relative change per seed then averaged, best/second marks, feature-change
// shares), the skip notes for missing parts, errors for files that are not
// results files, and the Jacobi eigen-solver behind Fig. 8's PCA.
#include <gtest/gtest.h>
#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/report/gnuplot.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/pca.h"
#include "sensecf/report/report.h"
#include "sensecf/report/summary.h"
#include "sensecf/store/h5file.h"
#include "sensecf/store/results.h"
#include "test_util.h"

namespace sensecf::report {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A CSV without quoted fields (the test's names need none) as header-keyed rows.
std::vector<std::map<std::string, std::string>> read_csv(const std::filesystem::path& path) {
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);
  const auto header = split_list(line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cs(line);
    std::string cell;
    while (std::getline(cs, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    EXPECT_EQ(cells.size(), header.size()) << path << ": " << line;
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

const std::map<std::string, std::string>& find_row(const std::vector<std::map<std::string, std::string>>& rows,
                                                   const std::map<std::string, std::string>& match) {
  for (const auto& r : rows) {
    bool ok = true;
    for (const auto& [k, v] : match) ok = ok && r.count(k) && r.at(k) == v;
    if (ok) return r;
  }
  static const std::map<std::string, std::string> none;
  ADD_FAILURE() << "no CSV row matches";
  return none;
}

double num(const std::map<std::string, std::string>& row, const std::string& key) {
  EXPECT_TRUE(row.count(key)) << "no column " << key;
  return row.count(key) ? std::stod(row.at(key)) : kNan;
}

store::CfMetricRow cf_row(const std::string& method, long long seed, long long cls, double validity, double distance,
                          double sparsity, double plausibility, const std::string& purpose = "table3") {
  store::CfMetricRow r;
  r.key = method + std::to_string(seed);
  r.method = method;
  r.scenario = "full";
  r.purpose = purpose;
  r.seed = seed;
  r.factual_class = cls;
  r.validity = validity;
  r.coverage = 1.0;
  r.distance = distance;
  r.sparsity = sparsity;
  r.plausibility = plausibility;
  return r;
}

store::ClfMetricRow clf_row(const std::string& kind, const std::string& scenario, const std::string& method,
                            long long seed, double fraction, double ratio, double value) {
  store::ClfMetricRow r;
  r.kind = kind;
  r.model = "nn";
  r.method = method;
  r.scenario = scenario;
  r.seed = seed;
  r.fraction = fraction;
  r.ratio = ratio;
  r.accuracy = r.precision = r.recall = r.f1 = r.auc = value;
  return r;
}

store::TaskRecord task(const std::string& key, const std::string& kind, const std::string& status,
                       const std::string& message = "") {
  store::TaskRecord t;
  t.key = key;
  t.kind = kind;
  t.label = kind + " " + key;
  t.status = status;
  t.message = message;
  return t;
}

// CFs of one table3 task; features a, b, c, age. `rows` lists factual and CF rows.
store::CfArrays arrays(const std::string& method, long long seed, const std::vector<std::vector<double>>& factual,
                       const std::vector<std::vector<double>>& cf) {
  store::CfArrays c;
  c.key = method + "-cf-" + std::to_string(seed);
  c.method = method;
  c.scenario = "full";
  c.purpose = "table3";
  c.seed = seed;
  c.features = {"a", "b", "c", "age"};
  c.n = factual.size();
  c.d = 4;
  for (std::size_t i = 0; i < c.n; ++i) {
    c.query_row.push_back(static_cast<long long>(100 + i));
    c.factual.insert(c.factual.end(), factual[i].begin(), factual[i].end());
    c.counterfactual.insert(c.counterfactual.end(), cf[i].begin(), cf[i].end());
    const bool found = !std::isnan(cf[i][0]);
    c.target.push_back(static_cast<long long>(i % 2));
    c.probability.push_back(found ? 0.7 : kNan);
    c.valid.push_back(found ? 1 : 0);
    c.found.push_back(found ? 1 : 0);
  }
  return c;
}

// The hand-made results file of the main test. Expected values are worked out
// next to each test that checks them.
void write_results(const std::string& path) {
  store::Provenance p;
  p.sensecf_version = "0.1.0";
  p.git_sha = "abc1234";
  p.config_hash = "00ff00ff00ff00ff";
  p.started = "2025-01-01T00:00:00Z";
  p.config = "[data]\nimmutable =                   # default\n[sweep]\nmethods = gamma, alpha, beta   # config file\n";
  auto w = store::ResultsWriter::create(path, p);
  store::TaskOutput out;
  // Table III. Class 0: validity gamma .9/.7, alpha .8/.6, beta .5/.5; distance gamma 1.0/1.2,
  // alpha .2/.4, beta .5/.7; sparsity gamma 2/2, alpha 3/5, beta 2/2; plausibility gamma
  // .99/.97, alpha .5/.7, beta 1/1. Class 1: the same, except beta has seed 1 only (validity .95).
  const double v[3][2][4] = {{{0.9, 1.0, 2, 0.99}, {0.7, 1.2, 2, 0.97}},
                             {{0.8, 0.2, 3, 0.5}, {0.6, 0.4, 5, 0.7}},
                             {{0.5, 0.5, 2, 1.0}, {0.5, 0.7, 2, 1.0}}};
  const char* names[3] = {"gamma", "alpha", "beta"};
  for (int m = 0; m < 3; ++m) {
    for (int s = 0; s < 2; ++s) {
      const auto& x = v[m][s];
      out.cf.push_back(cf_row(names[m], s + 1, 0, x[0], x[1], x[2], x[3]));
      if (m == 2 && s == 1) continue;
      out.cf.push_back(cf_row(names[m], s + 1, 1, m == 2 ? 0.95 : x[0], x[1], x[2], x[3]));
    }
  }
  // Rows Table III must ignore: all queries, another purpose.
  out.cf.push_back(cf_row("gamma", 1, -1, 0.01, 9, 9, 0.01));
  out.cf.push_back(cf_row("alpha", 1, 0, 0.01, 9, 9, 0.01, "augment"));
  // Table IV: full F1 .8/.6; positive at 0.5: .6/.3; alpha augment ratio 1: .75/.45, ratio .5: .6/.3.
  out.clf.push_back(clf_row("train_clf", "full", "", 1, 0, 0, 0.8));
  out.clf.push_back(clf_row("train_clf", "full", "", 2, 0, 0, 0.6));
  out.clf.push_back(clf_row("train_clf", "positive", "", 1, 0.5, 0, 0.6));
  out.clf.push_back(clf_row("train_clf", "positive", "", 2, 0.5, 0, 0.3));
  out.clf.push_back(clf_row("train_clf", "positive", "", 1, 0.3, 0, 0.1));  // another fraction: ignored
  auto augment = [&](long long seed, double ratio, double f1, long long added) {
    auto r = clf_row("augment", "positive", "alpha", seed, 0.5, ratio, f1);
    r.n_added = added;
    r.n_wanted = 10;
    out.clf.push_back(r);
  };
  augment(1, 1.0, 0.75, 10);
  augment(2, 1.0, 0.45, 8);
  augment(1, 0.5, 0.6, 5);
  augment(2, 0.5, 0.3, 5);
  // Fig. 1: nn at 0: .7/.5, at 0.5: .6/.4; xgb at 0: .65 (one seed).
  for (auto [model, fraction, seed, f1] : std::vector<std::tuple<std::string, double, long long, double>>{
           {"nn", 0, 1, 0.7}, {"nn", 0, 2, 0.5}, {"nn", 0.5, 1, 0.6}, {"nn", 0.5, 2, 0.4}, {"xgb", 0, 1, 0.65}}) {
    auto r = clf_row("fig1", "full", "", seed, fraction, 0, f1);
    r.model = model;
    out.clf.push_back(r);
  }
  // Fig. 6 / 8 CFs. alpha seed 1: q0 changes a; q1 a and b; q2 none found; q3 b (and c by 1e-12,
  // below the change threshold) -> 3 found, shares a 2/3, b 2/3, c 0, age 0.
  // alpha seed 2: q0 changes a and c, q1 c -> a 1/2, b 0, c 1. beta seed 1: both change b.
  out.counterfactuals.push_back(arrays("alpha", 1,
                                       {{1, 2, 3, 40}, {2, 3, 4, 50}, {3, 4, 5, 60}, {4, 5, 6, 70}},
                                       {{1.5, 2, 3, 40}, {2.5, 3.5, 4, 50}, {kNan, kNan, kNan, kNan},
                                        {4, 5.5, 6 + 1e-12, 70}}));
  out.counterfactuals.push_back(arrays("alpha", 2, {{1, 1, 1, 30}, {2, 2, 2, 35}}, {{2, 1, 2, 30}, {2, 2, 3, 35}}));
  out.counterfactuals.push_back(arrays("beta", 1, {{0, 0, 0, 20}, {1, 1, 1, 25}}, {{0, 1, 0, 20}, {1, 2, 1, 25}}));
  w.append(task("k1", "generate", "done"), out);
  w.append(task("k2", "augment", "done"), {});
  w.append(task("k3", "augment", "failed", "CUDA out of memory"), {});
  w.append(task("k3", "augment", "failed", "CUDA out of memory again"), {});
  w.append(task("k4", "train_clf", "failed", "diverged"), {});
  w.append(task("k4", "train_clf", "done"), {});
  w.flush();
}

struct ReportFixture : ::testing::Test {
  test::TempDir dir;
  std::string results = dir.file("r.h5");
  ReportOptions options;
  std::vector<std::string> written;
  std::filesystem::path out;

  void SetUp() override {
    write_results(results);
    options.results = {results};
    options.out = dir.file("report");
    out = options.out;
  }
  void run() { written = write_report(options); }
};

TEST_F(ReportFixture, Table3MeanSdMarksAndOrder) {
  run();
  const std::string md = read_file(out / "table3.md");
  // Rows in the config's order (gamma, alpha, beta). Class 0 validity (over all queries):
  // gamma 0.80 ± 0.14 best, alpha 0.70 ± 0.14 second. Only methods with validity >= 0.9 ×
  // 0.80 = 0.72 take part in the distance / sparsity / plausibility marks: gamma alone, so
  // alpha's lower distance (0.30) and beta's plausibility (100%) are not marked. Coverage
  // is 1 everywhere (all best); parse rate is "—" for baselines.
  EXPECT_NE(md.find("| gamma | **0.80 ± 0.14** | **1.00 ± 0.00** | — | **1.10 ± 0.14** | **2.00 ± 0.00** | "
                    "**98.0 ± 1.4** |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| alpha | _0.70 ± 0.14_ | **1.00 ± 0.00** | — | 0.30 ± 0.14 | 4.00 ± 1.41 | 60.0 ± 14.1 |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| beta | 0.50 ± 0.00 | **1.00 ± 0.00** | — | 0.60 ± 0.14 | 2.00 ± 0.00 | 100.0 ± 0.0 |"),
            std::string::npos) << md;
  EXPECT_LT(md.find("| gamma |"), md.find("| alpha |"));
  EXPECT_LT(md.find("| alpha |"), md.find("| beta |"));
  // Class 1, beta: one seed -> the mean alone; the best validity (0.95), and the only method
  // above 0.9 × 0.95, so it has every mark.
  EXPECT_NE(md.find("**0.95** | **1.00** | — | **0.50** | **2.00** | **100.0** |"), std::string::npos) << md;
  EXPECT_NE(md.find("Class 0 Validity ↑"), std::string::npos);
  EXPECT_NE(md.find("Class 1 Parse rate"), std::string::npos);

  const auto csv = read_csv(out / "table3.csv");
  ASSERT_EQ(csv.size(), 3u);
  const auto& alpha = find_row(csv, {{"method", "alpha"}});
  EXPECT_EQ(alpha.at("n_seeds"), "2");
  EXPECT_EQ(alpha.at("label"), "alpha");
  EXPECT_NEAR(num(alpha, "class0_validity_mean"), 0.7, 1e-12);
  EXPECT_NEAR(num(alpha, "class0_validity_sd"), std::sqrt(0.02), 1e-12);
  EXPECT_EQ(alpha.at("class0_validity_rank"), "2");
  EXPECT_EQ(alpha.at("class0_distance_rank"), "");  // not ranked: validity below 0.9 × the best
  EXPECT_EQ(alpha.at("class0_ranked"), "0");
  EXPECT_EQ(alpha.at("class0_plausibility_pct_rank"), "");
  EXPECT_EQ(alpha.at("class0_parse_rate_mean"), "");  // NaN: not applicable
  EXPECT_NEAR(num(alpha, "class0_plausibility_pct_mean"), 60, 1e-9);
  EXPECT_EQ(find_row(csv, {{"method", "gamma"}}).at("class0_distance_rank"), "1");
  const auto& beta = find_row(csv, {{"method", "beta"}});
  EXPECT_NEAR(num(beta, "class1_validity_mean"), 0.95, 1e-12);
  EXPECT_EQ(beta.at("class1_validity_sd"), "");  // one seed: no sd

  const std::string tex = read_file(out / "table3.tex");
  EXPECT_NE(tex.find("\\multicolumn{6}{c}{Class 0}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\textbf{0.80 $\\pm$ 0.14}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\underline{0.70 $\\pm$ 0.14}"), std::string::npos) << tex;
  EXPECT_NE(tex.find(" & --- & "), std::string::npos) << tex;  // parse rate of a baseline
}

TEST_F(ReportFixture, Table4RelativeChangePerSeedAndRecovery) {
  run();
  const std::string md = read_file(out / "table4.md");
  // Baseline: ACC in % 70.0 ± 14.1, F1 0.70 ± 0.14.
  EXPECT_NE(md.find("| Baseline (full training set) | NN | 70.0 ± 14.1 | 0.70 ± 0.14 |"), std::string::npos) << md;
  // Reduced vs full per seed: (.6−.8)/.8 = −25%, (.3−.6)/.6 = −50% -> −37.50 ± 17.68 (the ratio
  // of the means, (.45 − .7)/.7 = −35.71%, would be wrong).
  EXPECT_NE(md.find("| Model trained on reduced data | NN | -37.50 ± 17.68% ↓ |"), std::string::npos) << md;
  // Recovery at the largest ratio (1): (.75−.6)/.6 = 25%, (.45−.3)/.3 = 50%; 9 of 10 CFs added on average.
  EXPECT_NE(md.find("| CF added (recovery over reduced, ratio 1) | alpha | 37.50 ± 17.68% ↑ |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| 9 / 10 |"), std::string::npos) << md;
  EXPECT_NE(md.find("Scenario A — Positive-class scarcity (class 1 reduced by 50%)"), std::string::npos) << md;
  EXPECT_EQ(md.find("Scenario B"), std::string::npos) << md;

  const auto csv = read_csv(out / "table4.csv");
  const auto& reduced = find_row(csv, {{"block", "reduced"}, {"scenario", "positive"}});
  EXPECT_NEAR(num(reduced, "f1_mean"), -37.5, 1e-9);
  EXPECT_NEAR(num(reduced, "f1_sd"), std::sqrt(2 * 12.5 * 12.5), 1e-9);
  EXPECT_EQ(reduced.at("unit"), "percent_change");
  const auto& added = find_row(csv, {{"block", "augmented"}, {"method", "alpha"}});
  EXPECT_NEAR(num(added, "auc_mean"), 37.5, 1e-9);
  EXPECT_NEAR(num(added, "ratio"), 1.0, 0);
  EXPECT_NEAR(num(added, "n_added_mean"), 9, 0);
  const auto& baseline = find_row(csv, {{"block", "baseline"}});
  EXPECT_NEAR(num(baseline, "accuracy_mean"), 0.7, 1e-12);

  const std::string index = read_file(out / "index.md");
  EXPECT_NE(index.find("scenario B (negative) left out"), std::string::npos) << index;

  // --ratio 0.5: alpha's F1 equals the reduced model's -> 0.00 ± 0.00% without an arrow.
  options.ratio = 0.5;
  run();
  EXPECT_NE(read_file(out / "table4.md").find("| CF added (recovery over reduced, ratio 0.5) | alpha | 0.00 ± 0.00% |"),
            std::string::npos)
      << read_file(out / "table4.md");
}

TEST_F(ReportFixture, FigureDataAndIndex) {
  run();
  // Fig. 1: nn at 0: (.7, .5) -> 0.6 ± 0.1414; xgb one seed -> no sd.
  const auto fig1 = read_csv(out / "fig1.csv");
  ASSERT_EQ(fig1.size(), 3u);
  const auto& nn0 = find_row(fig1, {{"model", "nn"}, {"reduction", "0"}});
  EXPECT_NEAR(num(nn0, "f1_mean"), 0.6, 1e-12);
  EXPECT_NEAR(num(nn0, "f1_sd"), std::sqrt(0.02), 1e-12);
  EXPECT_EQ(find_row(fig1, {{"model", "xgb"}}).at("f1_sd"), "");

  // Fig. 6: alpha a = (2/3 + 1/2)/2, b = (2/3 + 0)/2, c = (0 + 1)/2; age never changes -> left out.
  const auto fig6 = read_csv(out / "fig6.csv");
  const auto& a = find_row(fig6, {{"method", "alpha"}, {"feature", "a"}});
  EXPECT_NEAR(num(a, "share_mean"), 7.0 / 12, 1e-12);
  EXPECT_NEAR(num(a, "share_sd"), (1.0 / 6) / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(a.at("n_cfs"), "5");
  EXPECT_NEAR(num(find_row(fig6, {{"method", "alpha"}, {"feature", "b"}}), "share_mean"), 1.0 / 3, 1e-12);
  EXPECT_NEAR(num(find_row(fig6, {{"method", "alpha"}, {"feature", "c"}}), "share_mean"), 0.5, 1e-12);
  EXPECT_NEAR(num(find_row(fig6, {{"method", "beta"}, {"feature", "b"}}), "share_mean"), 1.0, 0);
  for (const auto& r : fig6) EXPECT_NE(r.at("feature"), "age");
  EXPECT_EQ(fig6.size(), 6u);  // 2 methods x 3 features

  // Fig. 7: the alpha line at two ratios plus the reduced and full reference lines.
  const auto fig7 = read_csv(out / "fig7.csv");
  EXPECT_NEAR(num(find_row(fig7, {{"kind", "augment"}, {"ratio", "1"}}), "f1_mean"), 0.6, 1e-12);
  EXPECT_NEAR(num(find_row(fig7, {{"kind", "reduced"}}), "f1_mean"), 0.45, 1e-12);
  EXPECT_NEAR(num(find_row(fig7, {{"kind", "full"}}), "f1_mean"), 0.7, 1e-12);

  // Fig. 8 (seed 1): alpha 4 factual + 3 found CFs, beta 2 + 2; PCA coordinates are centred.
  const auto fig8 = read_csv(out / "fig8.csv");
  ASSERT_EQ(fig8.size(), 11u);
  double sum_pc1 = 0;
  int n_alpha_cf = 0;
  for (const auto& r : fig8) {
    if (r.at("method") != "alpha") continue;
    sum_pc1 += num(r, "pc1");
    n_alpha_cf += r.at("point") == "counterfactual";
  }
  EXPECT_EQ(n_alpha_cf, 3);
  EXPECT_NEAR(sum_pc1, 0, 1e-9);
  EXPECT_EQ(find_row(fig8, {{"method", "alpha"}, {"point", "factual"}, {"query", "1"}}).at("class"), "0");  // 1 − target 1

  // index.md: provenance, task counts (k1, k2 done; k3 failed twice; k4 failed then done), outputs.
  const std::string index = read_file(out / "index.md");
  EXPECT_NE(index.find("| git SHA | abc1234 |"), std::string::npos) << index;
  EXPECT_NE(index.find("| config hash | 00ff00ff00ff00ff |"), std::string::npos) << index;
  EXPECT_NE(index.find("4 tasks (6 attempts): 3 done, 1 failed."), std::string::npos) << index;
  EXPECT_NE(index.find("CUDA out of memory again"), std::string::npos) << index;
  EXPECT_NE(index.find("[table3.md](table3.md)"), std::string::npos) << index;
  EXPECT_NE(index.find("Fig. 6 leaves out features that no CF changes (immutable, or never used): age."),
            std::string::npos) << index;
  // No LLM methods: the per-method Fig. 8, and the index says why the ablation is absent.
  EXPECT_NE(index.find("Fig. 8 shows one PCA panel per method, not the paper's zero-shot vs fine-tuned ablation: "
                       "the results have no LLM method with table3 CFs."),
            std::string::npos) << index;
  EXPECT_NE(index.find("| data source | unknown"), std::string::npos) << index;
  EXPECT_NE(index.find("| CF baselines | gamma, alpha, beta |"), std::string::npos) << index;
  EXPECT_NE(index.find("- No LLM method: "), std::string::npos) << index;
  ASSERT_FALSE(written.empty());
  EXPECT_EQ(written.back(), (out / "index.md").string());
  for (const auto& p : written) EXPECT_TRUE(std::filesystem::exists(p)) << p;
}

TEST_F(ReportFixture, FiguresAreDrawnWhenGnuplotIsThere) {
  if (!Gnuplot::find("gnuplot")) GTEST_SKIP() << "gnuplot is not installed";
  run();
  for (const char* stem : {"fig1", "fig6", "fig7", "fig8"}) {
    for (const char* ext : {".png", ".svg", ".gp", ".csv"}) {
      const auto path = out / (std::string(stem) + ext);
      ASSERT_TRUE(std::filesystem::exists(path)) << path;
      EXPECT_GT(std::filesystem::file_size(path), 100u) << path;
    }
  }
  EXPECT_EQ(read_file(out / "index.md").find("gnuplot failed"), std::string::npos) << read_file(out / "index.md");
}

TEST_F(ReportFixture, WithoutGnuplotScriptsAndTablesAreStillWritten) {
  options.gnuplot = dir.file("no-such-gnuplot");
  run();
  EXPECT_TRUE(std::filesystem::exists(out / "fig1.gp"));
  EXPECT_TRUE(std::filesystem::exists(out / "fig1.csv"));
  EXPECT_FALSE(std::filesystem::exists(out / "fig1.png"));
  EXPECT_TRUE(std::filesystem::exists(out / "table3.md"));
  EXPECT_NE(read_file(out / "index.md").find("was not found"), std::string::npos);
}

TEST_F(ReportFixture, MethodsOptionPicksAndOrders) {
  options.methods = {"beta", "gamma"};
  run();
  const std::string md = read_file(out / "table3.md");
  EXPECT_EQ(md.find("| alpha |"), std::string::npos);
  EXPECT_LT(md.find("| beta |"), md.find("| gamma |"));
  // Marks are among the methods shown: beta's validity 0.50 is now second.
  EXPECT_NE(md.find("| beta | _0.50 ± 0.00_ |"), std::string::npos) << md;
}

// --- LLM methods -----------------------------------------------------------------

// A results file with two baselines and four LLM methods of one model "tiny":
// zero-shot, few-shot, fine-tuned, and zero-shot with the variant tag
// "constrained". Table III (seed 1, both classes alike):
//   method                  validity coverage parse distance sparsity plausibility
//   nice                      0.60    1.00     —     0.50     2.0        1.00
//   dice-kdtree               0.06    0.06     —     0.10     1.0        1.00   (few CFs, all valid)
//   tiny (zero-shot)          0.40    0.80   0.75    1.20     3.5        0.85
//   tiny (few-shot)           0.70    0.90   0.90    0.90     3.0        0.90
//   tiny (fine-tuned)         0.95    1.00   1.00    0.40     1.5        0.99
//   tiny (zero-shot) +constr. 0.90    0.90   0.95    0.30     1.2        0.98
store::CfMetricRow llm_cf_row(const std::string& method, long long cls, double validity, double coverage,
                              double parse_rate, double distance, double sparsity, double plausibility) {
  auto r = cf_row(method, 1, cls, validity, distance, sparsity, plausibility);
  r.coverage = coverage;
  r.parse_rate = parse_rate;
  r.validity_returned = coverage > 0 ? validity / coverage : kNan;
  r.n_queries = 100;
  r.n_cfs = static_cast<long long>(100 * coverage);
  return r;
}

// Factual row of data-set row `row`: deep_pct, steps_mean, glucose_mean, age.
std::vector<double> patient(long long row) {
  return {10.0 + static_cast<double>(row - 100) * 2.5, 300.0 + static_cast<double>(row), 200.0 + static_cast<double>(row % 7), 60.0 + static_cast<double>(row % 5)};
}

// CFs of one LLM task for data-set rows `rows`; each CF raises deep_pct by `deep`
// and lowers glucose_mean by `glucose` (target 0: every factual is class 1).
store::CfArrays llm_arrays(const std::string& method, const std::vector<long long>& rows, double deep,
                           double glucose) {
  store::CfArrays c;
  c.key = method.substr(method.rfind(':') + 1) + "-t3";
  c.method = method;
  c.scenario = "full";
  c.purpose = "table3";
  c.seed = 1;
  c.features = {"deep_pct", "steps_mean", "glucose_mean", "age"};
  c.n = rows.size();
  c.d = 4;
  for (long long row : rows) {
    const auto x = patient(row);
    auto cf = x;
    cf[0] += deep;
    cf[2] -= glucose;
    c.query_row.push_back(row);
    c.factual.insert(c.factual.end(), x.begin(), x.end());
    c.counterfactual.insert(c.counterfactual.end(), cf.begin(), cf.end());
    c.target.push_back(0);
    c.probability.push_back(0.23);
    c.valid.push_back(1);
    c.found.push_back(1);
    c.answer.push_back(fmt::format("deep_pct: {}\nglucose_mean: {}", cf[0], cf[2]));
  }
  return c;
}

void write_llm_results(const std::string& path) {
  store::Provenance p;
  p.config =
      "[data]\nsource = synth                # config file\nimmutable = age               # config file\n"
      "[sweep]\nllm_methods = llm:tiny:zero-shot, llm:tiny:few-shot, llm:tiny:fine-tuned, "
      "llm:tiny:zero-shot+constrained\nmethods = nice, dice-kdtree   # config file\n";
  auto w = store::ResultsWriter::create(path, p);
  store::TaskOutput out;
  for (long long cls : {0, 1}) {
    out.cf.push_back(llm_cf_row("nice", cls, 0.60, 1.00, kNan, 0.50, 2.0, 1.00));
    out.cf.push_back(llm_cf_row("dice-kdtree", cls, 0.06, 0.06, kNan, 0.10, 1.0, 1.00));
    out.cf.push_back(llm_cf_row("llm:tiny:zero-shot", cls, 0.40, 0.80, 0.75, 1.20, 3.5, 0.85));
    out.cf.push_back(llm_cf_row("llm:tiny:few-shot", cls, 0.70, 0.90, 0.90, 0.90, 3.0, 0.90));
    out.cf.push_back(llm_cf_row("llm:tiny:fine-tuned", cls, 0.95, 1.00, 1.00, 0.40, 1.5, 0.99));
    out.cf.push_back(llm_cf_row("llm:tiny:zero-shot+constrained", cls, 0.90, 0.90, 0.95, 0.30, 1.2, 0.98));
  }
  // Table IV / Fig. 7: F1 full .8, positive .6; augment at ratios .5 and 1.
  out.clf.push_back(clf_row("train_clf", "full", "", 1, 0, 0, 0.8));
  out.clf.push_back(clf_row("train_clf", "positive", "", 1, 0.5, 0, 0.6));
  for (const char* m : {"nice", "llm:tiny:zero-shot", "llm:tiny:few-shot", "llm:tiny:fine-tuned"}) {
    for (double ratio : {0.5, 1.0}) out.clf.push_back(clf_row("augment", "positive", m, 1, 0.5, ratio, 0.7));
  }
  // CFs: zero-shot for rows 100-103, fine-tuned for rows 101-104 (three shared), a baseline.
  out.counterfactuals.push_back(llm_arrays("llm:tiny:zero-shot", {100, 101, 102, 103}, 15.0, 60.0));
  out.counterfactuals.push_back(llm_arrays("llm:tiny:fine-tuned", {101, 102, 103, 104}, 3.0, 10.0));
  auto nice = llm_arrays("nice", {100, 101}, 1.0, 0.0);
  nice.answer.assign(2, "");
  out.counterfactuals.push_back(nice);
  // Two generate tasks of a remote model (as if llm:tiny were served): summed per method.
  for (long long hits : {0, 4}) {
    store::UsageRow u;
    u.key = "g1";
    u.method = "llm:tiny:zero-shot";
    u.answers = 4;
    u.cache_hits = hits;
    u.requests = 5 - hits;
    u.retries = 1 - hits / 4;
    u.prompt_tokens = 1000;
    u.completion_tokens = 200;
    u.cost_usd = 0.0045;
    out.usage.push_back(u);
  }
  w.append(task("g1", "generate", "done"), out);
  store::TaskRecord ft = task("f1", "finetune", "done");
  ft.model = "tiny";
  ft.seed = 1;
  store::TaskOutput ft_out;
  for (long long step : {1, 2}) ft_out.train.push_back({"f1", "finetune", step, 2.0 / static_cast<double>(step), kNan});
  w.append(ft, ft_out);
  w.flush();
}

struct LlmReportFixture : ::testing::Test {
  test::TempDir dir;
  std::string results = dir.file("llm.h5");
  ReportOptions options;
  std::filesystem::path out;

  void SetUp() override {
    write_llm_results(results);
    options.results = {results};
    options.out = dir.file("report");
    options.gnuplot = dir.file("no-gnuplot");  // the scripts are what these tests read
    out = options.out;
    write_report(options);
  }
};

TEST(ReportMethods, LlmNamesAndLabels) {
  EXPECT_EQ(method_label("llm:llama-3.1-8b:fine-tuned"), "llama-3.1-8b (fine-tuned)");
  EXPECT_EQ(method_label("llm:tiny:zero-shot+constrained"), "tiny (zero-shot) +constrained");
  EXPECT_EQ(method_label("llm:tiny:fine-tuned+verify+k3"), "tiny (fine-tuned) +verify +k3");
  EXPECT_EQ(method_label("dice-kdtree"), "dice-kdtree");
  EXPECT_EQ(method_label("llm:broken"), "llm:broken");  // not the llm:<model>:<mode> shape: shown as is
  EXPECT_EQ(dash_type("llm:tiny:zero-shot"), 2);
  EXPECT_EQ(dash_type("llm:tiny:few-shot"), 3);
  EXPECT_EQ(dash_type("llm:tiny:fine-tuned+verify"), 1);
  EXPECT_EQ(dash_type("nice"), 1);
  EXPECT_EQ(baselines_first({"llm:a:zero-shot", "nice", "llm:a:fine-tuned", "dice-random"}),
            (std::vector<std::string>{"nice", "dice-random", "llm:a:zero-shot", "llm:a:fine-tuned"}));
}

TEST_F(LlmReportFixture, Table3ValidityCoverageParseRateAndLabels) {
  const std::string md = read_file(out / "table3.md");
  // Validity over all queries ranks; distance / sparsity / plausibility are marked only among
  // methods with validity >= 0.9 × 0.95: fine-tuned and +constrained. dice-kdtree's 0.10
  // distance (6% coverage) gets no mark; neither does anything of nice's.
  EXPECT_NE(md.find("| nice | 0.60 | **1.00** | — | 0.50 | 2.00 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| dice-kdtree | 0.06 | 0.06 | — | 0.10 | 1.00 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| tiny (zero-shot) | 0.40 | 0.80 | 0.75 | 1.20 | 3.50 | 85.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| tiny (few-shot) | 0.70 | _0.90_ | 0.90 | 0.90 | 3.00 | 90.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| tiny (fine-tuned) | **0.95** | **1.00** | 1.00 | _0.40_ | _1.50_ | **99.0** |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| tiny (zero-shot) +constrained | _0.90_ | _0.90_ | 0.95 | **0.30** | **1.20** | _98.0_ |"),
            std::string::npos) << md;
  // Baselines first, then the LLM rows in the config's order.
  EXPECT_LT(md.find("| dice-kdtree |"), md.find("| tiny (zero-shot) |"));
  EXPECT_LT(md.find("| tiny (zero-shot) |"), md.find("| tiny (few-shot) |"));
  EXPECT_LT(md.find("| tiny (few-shot) |"), md.find("| tiny (fine-tuned) |"));
  const auto csv = read_csv(out / "table3.csv");
  const auto& kdtree = find_row(csv, {{"method", "dice-kdtree"}});
  EXPECT_EQ(kdtree.at("class1_distance_rank"), "");
  EXPECT_EQ(kdtree.at("class1_ranked"), "0");
  EXPECT_NEAR(num(kdtree, "class1_validity_returned_mean"), 1.0, 1e-12);
  const auto& ft = find_row(csv, {{"method", "llm:tiny:fine-tuned"}});
  EXPECT_EQ(ft.at("label"), "tiny (fine-tuned)");
  EXPECT_NEAR(num(ft, "class0_parse_rate_mean"), 1.0, 0);
}

TEST_F(LlmReportFixture, Table4AndFig7ShowLlmCurves) {
  const std::string md = read_file(out / "table4.md");
  EXPECT_NE(md.find("| nice | 16.67% ↑ |"), std::string::npos) << md;  // (.7 − .6) / .6
  EXPECT_NE(md.find("|  | tiny (fine-tuned) | 16.67% ↑ |"), std::string::npos) << md;
  EXPECT_LT(md.find("| nice |"), md.find("| tiny (zero-shot) |"));

  const std::string gp = read_file(out / "fig7.gp");
  EXPECT_NE(gp.find("set xrange [0:100]"), std::string::npos) << gp;  // ratios in %, not autoscaled to 120
  // One key, in its own panel beside the data panels (which have none), each method once.
  EXPECT_NE(gp.find("unset key\n"), std::string::npos) << gp;
  const auto key_panel = gp.find("# the key, beside the panels");
  ASSERT_NE(key_panel, std::string::npos) << gp;
  const std::string key = gp.substr(key_panel, gp.find("unset multiplot", key_panel) - key_panel);
  EXPECT_NE(key.find("NaN with linespoints"), std::string::npos) << key;
  EXPECT_EQ(key.find("title 'nice'"), key.rfind("title 'nice'")) << key;
  EXPECT_NE(key.find("title 'reduced data'"), std::string::npos) << key;
  auto clause = [&](const std::string& title) {
    const auto at = gp.find("title '" + title + "'");
    EXPECT_NE(at, std::string::npos) << title << "\n" << gp;
    if (at == std::string::npos) return std::string();
    const auto start = gp.rfind('$', at);
    return gp.substr(start, at - start);
  };
  const std::string zero_shot = clause("tiny (zero-shot)"), few_shot = clause("tiny (few-shot)"),
                    fine_tuned = clause("tiny (fine-tuned)"), nice = clause("nice");
  EXPECT_NE(zero_shot.find(" dt 2 "), std::string::npos) << zero_shot;  // dashed
  EXPECT_NE(few_shot.find(" dt 3 "), std::string::npos) << few_shot;    // dotted
  EXPECT_NE(fine_tuned.find(" dt 1 "), std::string::npos) << fine_tuned;  // solid
  EXPECT_NE(nice.find(" dt 1 "), std::string::npos) << nice;
  // One colour per model: the modes of tiny share it, the baseline has its own.
  auto colour = [](const std::string& c) { return c.substr(c.find(" lt "), c.find(" dt ") - c.find(" lt ")); };
  EXPECT_EQ(colour(zero_shot), colour(fine_tuned));
  EXPECT_NE(colour(nice), colour(fine_tuned));

  EXPECT_NE(read_file(out / "fig6.gp").find("'tiny (fine-tuned)'"), std::string::npos);
}

TEST_F(LlmReportFixture, Fig8AblationUsesOneProjection) {
  const auto fig8 = read_csv(out / "fig8.csv");
  // Rows 101-103 are shared: 3 factual points and 3 CFs per panel, two panels.
  ASSERT_EQ(fig8.size(), 12u);
  std::map<std::string, std::pair<std::string, std::string>> zero_shot, fine_tuned;  // query_row -> (pc1, pc2)
  for (const auto& r : fig8) {
    EXPECT_TRUE(r.at("method") == "llm:tiny:zero-shot" || r.at("method") == "llm:tiny:fine-tuned") << r.at("method");
    EXPECT_NE(r.at("query_row"), "100");
    EXPECT_NE(r.at("query_row"), "104");
    if (r.at("point") != "factual") continue;
    (r.at("method") == "llm:tiny:zero-shot" ? zero_shot : fine_tuned)[r.at("query_row")] = {r.at("pc1"), r.at("pc2")};
  }
  ASSERT_EQ(zero_shot.size(), 3u);
  EXPECT_EQ(zero_shot, fine_tuned);  // the same factual maps to the same point in both panels
  // The projection is fitted on the union (3 factual + 6 CF points), so its coordinates
  // sum to 0 over all of them, not per panel.
  double sum = 0;
  for (const auto& r : fig8) {
    if (r.at("point") == "counterfactual" || r.at("method") == "llm:tiny:zero-shot") sum += num(r, "pc1");
  }
  EXPECT_NEAR(sum, 0, 1e-9);
  const std::string gp = read_file(out / "fig8.gp");
  EXPECT_NE(gp.find("set xrange ["), std::string::npos) << gp;  // shared axes
  EXPECT_NE(gp.find("tiny (zero-shot): 3 CFs for 3 factual rows"), std::string::npos) << gp;
  EXPECT_NE(read_file(out / "index.md").find("Fig. 8 (ablation) data: tiny (zero-shot) vs tiny (fine-tuned) on 3 shared"),
            std::string::npos);
}

TEST_F(LlmReportFixture, InterventionNarrative) {
  const std::string md = read_file(out / "intervention.md");
  // The best LLM by class-1 validity is tiny (fine-tuned); its first query is data-set row
  // 101: deep_pct 12.5 -> 15.5, glucose_mean 203 -> 193, steps and age unchanged.
  EXPECT_NE(md.find("Method: **tiny (fine-tuned)** (`llm:tiny:fine-tuned`)"), std::string::npos) << md;
  EXPECT_NE(md.find("test row 101"), std::string::npos) << md;
  EXPECT_NE(md.find("- Increase deep\\_pct (%) from 12.5 to 15.5\n"), std::string::npos) << md;
  EXPECT_NE(md.find("- Decrease glucose\\_mean from 203 to 193\n"), std::string::npos) << md;
  EXPECT_EQ(md.find("steps\\_mean from"), std::string::npos) << md;
  EXPECT_NE(md.find("Immutable features, unchanged: age = 61."), std::string::npos) << md;
  EXPECT_NE(md.find("Other features, unchanged: steps\\_mean."), std::string::npos) << md;
  EXPECT_NE(md.find("after: 0.23"), std::string::npos) << md;
  EXPECT_NE(md.find("```text\ndeep_pct: 15.5\nglucose_mean: 193\n```"), std::string::npos) << md;
}

TEST_F(LlmReportFixture, IndexSaysWhatTheRunHolds) {
  const std::string index = read_file(out / "index.md");
  EXPECT_NE(index.find("| data source | synthetic"), std::string::npos) << index;
  EXPECT_NE(index.find("| CF baselines | nice, dice-kdtree |"), std::string::npos) << index;
  EXPECT_NE(index.find("| LLM methods | tiny (zero-shot), tiny (few-shot), tiny (fine-tuned), tiny (zero-shot) "
                       "+constrained |"),
            std::string::npos) << index;
  EXPECT_NE(index.find("| LLM models and modes | tiny: few-shot, fine-tuned, zero-shot, zero-shot +constrained |"),
            std::string::npos) << index;
  EXPECT_NE(index.find("| fine-tuning in this run | tiny: 1 adapter(s) trained (seeds 1), 2 loss rows |"),
            std::string::npos) << index;
  EXPECT_NE(index.find("| remote LLMs (/metrics/usage) | llm:tiny:zero-shot: 8 answers (4 from the cache), 6 requests, 0 "
                       "given up, 2000 + 400 tokens, ~$0.01 |"),
            std::string::npos) << index;
  EXPECT_EQ(index.find("Not in this run"), std::string::npos) << index;  // every mode, baselines, fine-tuning
  EXPECT_NE(index.find("[intervention.md](intervention.md)"), std::string::npos) << index;
  EXPECT_NE(index.find("Fig. 1 skipped"), std::string::npos) << index;
}

TEST_F(LlmReportFixture, LlmFiguresAreDrawnWhenGnuplotIsThere) {
  if (!Gnuplot::find("gnuplot")) GTEST_SKIP() << "gnuplot is not installed";
  options.gnuplot = "gnuplot";
  write_report(options);
  for (const char* stem : {"fig6", "fig7", "fig8"}) {
    EXPECT_GT(std::filesystem::file_size(out / (std::string(stem) + ".png")), 100u) << stem;
  }
  EXPECT_EQ(read_file(out / "index.md").find("gnuplot failed"), std::string::npos) << read_file(out / "index.md");
}

TEST(Report, OlderResultsFileIsNoted) {
  test::TempDir dir;
  const auto path = dir.file("r.h5");
  {
    auto w = store::ResultsWriter::create(path, {});
    store::TaskOutput out;
    auto r = cf_row("nice", 1, 0, 1.0, 0.1, 1, 1);
    r.n_cfs = 3;  // CFs, but no validity_returned: written before that column
    out.cf.push_back(r);
    w.append(task("k1", "generate", "done"), out);
  }
  ReportOptions options;
  options.results = {path};
  options.out = dir.file("out");
  write_report(options);
  const std::string index = read_file(std::filesystem::path(options.out) / "index.md");
  EXPECT_NE(index.find("predates the validity_returned column"), std::string::npos) << index;
  EXPECT_NE(index.find("Intervention narrative skipped"), std::string::npos) << index;
}

TEST(Report, MissingPartsAreNotedNotErrors) {
  test::TempDir dir;
  const auto path = dir.file("r.h5");
  {
    auto w = store::ResultsWriter::create(path, {});
    store::TaskOutput out;
    out.cf.push_back(cf_row("nice", 1, 0, 0.5, 0.1, 1, 1));
    w.append(task("k1", "generate", "done"), out);
  }
  ReportOptions options;
  options.results = {path};
  options.out = dir.file("out");
  const auto written = write_report(options);
  const std::string index = read_file(std::filesystem::path(options.out) / "index.md");
  for (const char* text : {"Table IV skipped", "Fig. 1 skipped", "Fig. 6 skipped", "Fig. 7 skipped", "Fig. 8 skipped"}) {
    EXPECT_NE(index.find(text), std::string::npos) << text << "\n" << index;
  }
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(options.out) / "table3.md"));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(options.out) / "table4.md"));
}

TEST(Report, FilesThatAreNotResultsGiveClearErrors) {
  test::TempDir dir;
  ReportOptions options;
  options.out = dir.file("out");
  options.results = {dir.write("notes.txt", "not hdf5\n")};
  EXPECT_THROW_WITH(write_report(options), Error, "not an HDF5 file");
  options.results = {dir.file("missing.h5")};
  EXPECT_THROW_WITH(write_report(options), Error, "missing or not an HDF5 file");
  options.results = {dir.file("other.h5")};
  {
    auto f = store::H5File::create(options.results[0]);
    f.set_attribute("something", "else");
  }
  EXPECT_THROW_WITH(write_report(options), Error, "not a sensecf results file");
}

TEST(Report, SummaryConventions) {
  const MeanSd one = summarise(std::vector<double>{0.5, kNan});
  EXPECT_EQ(one.n, 1u);
  EXPECT_DOUBLE_EQ(one.mean, 0.5);
  EXPECT_TRUE(std::isnan(one.sd));
  EXPECT_TRUE(std::isnan(relative_change_pct(1, 0)));
  EXPECT_EQ(best_two({0.5, kNan, 0.704, 0.701, 0.9}, Better::kLower, 2), (std::vector<int>{1, 0, 2, 2, 0}));
}

TEST(Pca, JacobiEigenOfKnownMatrix) {
  // [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 5, 3, 1; (0,0,1), (1,1,0)/√2, (1,−1,0)/√2.
  const auto e = symmetric_eigen({2, 1, 0, 1, 2, 0, 0, 0, 5}, 3);
  EXPECT_NEAR(e.values[0], 5, 1e-12);
  EXPECT_NEAR(e.values[1], 3, 1e-12);
  EXPECT_NEAR(e.values[2], 1, 1e-12);
  EXPECT_NEAR(e.vectors[0 * 3 + 1], 1 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(e.vectors[1 * 3 + 1], 1 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(e.vectors[2 * 3 + 0], 1, 1e-12);
}

TEST(Pca, JacobiSatisfiesTheEigenEquation) {
  const std::size_t d = 7;
  std::vector<double> a(d * d);
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j <= i; ++j) a[i * d + j] = a[j * d + i] = std::sin(1.0 + static_cast<double>(i * d + j));
  const auto e = symmetric_eigen(a, d);
  for (std::size_t k = 0; k < d; ++k) {
    if (k > 0) {
      EXPECT_GE(e.values[k - 1], e.values[k]);
    }
    for (std::size_t i = 0; i < d; ++i) {
      double av = 0;
      for (std::size_t j = 0; j < d; ++j) av += a[i * d + j] * e.vectors[j * d + k];
      EXPECT_NEAR(av, e.values[k] * e.vectors[i * d + k], 1e-10);
    }
  }
}

}  // namespace
}  // namespace sensecf::report
