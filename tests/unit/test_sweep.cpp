// The sweep's plan, journal and results-file conversions (no MPI needed; the
// runner itself is tested under mpirun in tests/mpi/test_sweep_runner.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/store/results.h"
#include "sensecf/sweep/identity.h"
#include "sensecf/sweep/journal.h"
#include "sensecf/sweep/plan.h"
#include "sweep_fixtures.h"
#include "test_util.h"

namespace sensecf::sweep {
namespace {

std::map<std::string, int> count_kinds(const std::vector<Task>& tasks) {
  std::map<std::string, int> n;
  for (const auto& t : tasks) ++n[t.kind];
  return n;
}

TEST(SweepPlan, StudyHasOneTaskPerGridCellInTopologicalOrder) {
  const SweepConfig c = test::small_study();
  const auto tasks = build_plan(c);
  const auto n = count_kinds(tasks);
  EXPECT_EQ(n.at("prepare"), 2 * 3);             // seeds x (full + 2 scenarios)
  EXPECT_EQ(n.at("train_clf"), 2 * 3);
  EXPECT_EQ(n.at("generate"), 2 * 3 * 2);        // seeds x scenarios x methods
  EXPECT_EQ(n.at("augment"), 2 * 2 * 2 * 2);     // seeds x scarce scenarios x methods x ratios
  EXPECT_EQ(n.at("fig1"), 2 * 2 * 2);            // seeds x models x {0, 0.3}
  std::set<std::string> seen;
  for (const auto& t : tasks) {
    for (const auto& d : t.deps) EXPECT_TRUE(seen.count(d)) << t.label() << " listed before its dependency";
    EXPECT_TRUE(seen.insert(t.key).second) << "duplicate key " << t.key;
    EXPECT_EQ(t.key.size(), 16u);
  }
}

TEST(SweepPlan, KeysDependOnParametersOnly) {
  SweepConfig a;
  a.sweep.methods = {"nice"};
  a.sweep.seeds = {1};
  SweepConfig b = a;
  b.sweep.methods = {"nice", "cfnow-greedy"};
  std::set<std::string> keys_a, keys_b;
  for (const auto& t : build_plan(a)) keys_a.insert(t.key);
  for (const auto& t : build_plan(b)) keys_b.insert(t.key);
  // adding a method adds tasks and keeps every existing key
  for (const auto& k : keys_a) EXPECT_TRUE(keys_b.count(k));
  EXPECT_GT(keys_b.size(), keys_a.size());
  EXPECT_NE(task_key("augment", {{"ratio", 0.2}}), task_key("augment", {{"ratio", 0.4}}));
  EXPECT_EQ(task_key("augment", {{"ratio", 0.2}, {"seed", 1}}), task_key("augment", {{"seed", 1}, {"ratio", 0.2}}));
}

TEST(SweepPlan, UnknownMethodIsRefusedWithASuggestion) {
  SweepConfig c;
  Options options("sweep", "test");
  declare_options(options, c);
  const std::vector<std::string> args = {"--sweep.methods", "nice,dice-randm"};
  EXPECT_THROW_WITH(options.parse(args), UsageError, "did you mean 'dice-random'");
}

TEST(Journal, RoundTripsEntriesExactlyAndCutsATornLine) {
  test::TempDir dir;
  const std::string path = dir.file("j.journal");
  store::TaskRecord r;
  r.key = "00000000000000aa";
  r.kind = "generate";
  r.status = "done";
  r.seconds = 0.1 + 0.2;  // not exactly representable in short decimal
  store::TaskOutput out;
  store::CfArrays a;
  a.key = r.key;
  a.method = "nice";
  a.scenario = "full";
  a.purpose = "table3";
  a.features = {"x", "y"};
  a.n = 1;
  a.d = 2;
  a.query_row = {7};
  a.factual = {1.0 / 3.0, 2.0};
  a.counterfactual = {std::numeric_limits<double>::quiet_NaN(), 1e-300};
  a.target = {1};
  a.probability = {std::numeric_limits<double>::quiet_NaN()};
  a.valid = {0};
  a.found = {0};
  out.counterfactuals.push_back(a);
  {
    auto j = Journal::create(path, {"a = 1\n", "h", "ini"});
    j.append({{r, out}, {r, out}});
  }
  {
    std::ofstream torn(path, std::ios::app);
    torn << "{\"record\": {\"key\": \"00";  // killed mid-write
  }
  JournalHeader h;
  std::vector<JournalEntry> entries;
  { auto j = Journal::open(path, &h, &entries); }
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(h.config, "a = 1\n");
  EXPECT_EQ(entries[0].record.seconds, 0.1 + 0.2);
  const auto& b = entries[1].output.counterfactuals.at(0);
  EXPECT_EQ(b.factual[0], 1.0 / 3.0);
  EXPECT_TRUE(std::isnan(b.counterfactual[0]));
  EXPECT_EQ(b.counterfactual[1], 1e-300);
  EXPECT_EQ(b.query_row[0], 7);
  // the torn tail is gone: a fresh read sees two entries and no warning-worthy line
  entries.clear();
  Journal::read(path, &h, &entries);
  EXPECT_EQ(entries.size(), 2u);
}

TEST(Journal, ConfigDifferencesNameEveryChangedKey) {
  const auto d = config_differences("a = 1\nb = x\nc = 3\n", "a = 2\nc = 3\nd = 4\n");
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], "a: 1 -> 2");
  EXPECT_EQ(d[1], "b: x -> (not set)");
  EXPECT_EQ(d[2], "d: (not set) -> 4");
  EXPECT_TRUE(config_differences("a = 1\n", "a = 1\n").empty());
}

TEST(ResultsFile, WriterAndReaderAgreeOnEveryTable) {
  test::TempDir dir;
  const std::string path = dir.file("r.h5");
  store::Provenance p;
  p.config = "[sweep]\nseeds = 1\n";
  p.config_hash = "abc";
  p.mpi_size = 4;
  {
    auto w = store::ResultsWriter::create(path, p);
    store::TaskRecord r;
    r.key = "0123456789abcdef";
    r.kind = "augment";
    r.status = "failed";
    r.message = std::string(2000, 'x');  // longer than the column: cut, not refused
    store::TaskOutput o;
    store::ClfMetricRow m;
    m.key = r.key;
    m.kind = "augment";
    m.f1 = 0.625;
    m.n_added = 12;
    o.clf.push_back(m);
    w.append(r, o);
    w.flush();
  }
  const auto res = store::read_results(path);
  EXPECT_EQ(res.provenance.config, p.config);
  EXPECT_EQ(res.provenance.mpi_size, 4);
  ASSERT_EQ(res.tasks.size(), 1u);
  EXPECT_EQ(res.tasks[0].status, "failed");
  EXPECT_EQ(res.tasks[0].message.size(), 511u);
  EXPECT_EQ(res.tasks[0].message.substr(508), "...");
  ASSERT_EQ(res.clf.size(), 1u);
  EXPECT_EQ(res.clf[0].f1, 0.625);
  EXPECT_EQ(res.clf[0].n_added, 12);
  EXPECT_TRUE(res.cf.empty());
  EXPECT_THROW_WITH(store::read_results(dir.file("missing.h5")), Error, "missing or not an HDF5 file");
}

}  // namespace
}  // namespace sensecf::sweep

namespace sensecf::sweep {
namespace {

// Growing a study (identity.h): lists that add tasks may grow; anything else,
// or a list that loses an entry, is refused naming the keys.
TEST(SweepIdentity, OnlyListsThatAddTasksMayGrow) {
  auto id = [](const std::string& canonical) {
    SweepIdentity i;
    i.config_canonical = canonical;
    return i;
  };
  const std::string base = "clf.model = nn\nsweep.llm_seeds = \nsweep.methods = nice\nsweep.seeds = 1\n";
  EXPECT_EQ(check_same_config(base, id(base), "r.h5"), ConfigChange::kSame);
  EXPECT_EQ(check_same_config(base,
                              id("clf.model = nn\nsweep.llm_seeds = \nsweep.methods = nice,dice-random\n"
                                 "sweep.seeds = 1,2\n"),
                              "r.h5"),
            ConfigChange::kGrown);
  EXPECT_THROW_WITH(check_same_config(base, id("clf.model = xgb\nsweep.llm_seeds = \nsweep.methods = nice\nsweep.seeds = 1,2\n"),
                                      "r.h5"),
                    UsageError, "clf.model: nn -> xgb");
  EXPECT_THROW_WITH(check_same_config(base, id("clf.model = nn\nsweep.llm_seeds = \nsweep.methods = dice-random\n"
                                               "sweep.seeds = 1\n"),
                                      "r.h5"),
                    UsageError, "sweep.methods: nice -> dice-random (a list may only grow");
  // An empty sweep.llm_seeds means every seed: naming some would shrink it.
  EXPECT_THROW_WITH(check_same_config(base, id("clf.model = nn\nsweep.llm_seeds = 1\nsweep.methods = nice\n"
                                               "sweep.seeds = 1\n"),
                                      "r.h5"),
                    UsageError, "sweep.llm_seeds");
  // A key the stored configuration lacks is no growth.
  EXPECT_THROW_WITH(check_same_config(base, id(base + "sweep.scenarios = positive\n"), "r.h5"), UsageError,
                    "sweep.scenarios: (not set) -> positive");
}

}  // namespace
}  // namespace sensecf::sweep
