// End-to-end tests of the real `sensecf` binary: help texts, synth -> train-clf
// for every classifier, the Fig. 1 curve, config files, and clear errors with
// the right exit codes for bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "test_util.h"

namespace sensecf {
namespace {

using test::run_command;

std::string bin() { return test::sensecf_bin(); }

// One small cohort shared by the tests of this file.
class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const auto r = run_command(bin() + " synth --participants 60 --synth.windows 12 --seed 3 --out " + cohort());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string cohort() { return dir_->file("cohort.csv"); }
  static test::TempDir* dir_;
};
test::TempDir* Cli::dir_ = nullptr;

TEST_F(Cli, HelpDescribesEveryCommandAndOption) {
  auto top = run_command(bin() + " --help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"synth", "train-clf", "score", "info"}) EXPECT_NE(top.output.find(cmd), std::string::npos) << cmd;
  auto train = run_command(bin() + " train-clf --help");
  EXPECT_EQ(train.exit_code, 0);
  for (const char* key : {"--data.path", "--data.label", "--data.group", "--data.categorical", "--data.immutable",
                          "--data.missing", "--clf.model", "--clf.nn_hidden", "--train.reduce", "--train.out"}) {
    EXPECT_NE(train.output.find(key), std::string::npos) << key;
  }
  EXPECT_NE(train.output.find("(=high_stress)"), std::string::npos) << "defaults are shown";
  auto unknown = run_command(bin() + " trian-clf");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("did you mean 'train-clf'"), std::string::npos) << unknown.output;
}

TEST_F(Cli, TrainsEveryClassifierAndSavesIt) {
  for (const std::string model : {"nn", "xgb", "rf", "svm"}) {
    const auto out = dir_->file("m_" + model);
    const auto r = run_command(bin() + " train-clf --log.level warn --json --data " + cohort() + " --model " + model +
                               " --out " + out);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j.at("model"), model);
    EXPECT_GT(j.at("f1").get<double>(), 0.3) << r.output;
    EXPECT_GT(j.at("auc").get<double>(), 0.6) << r.output;
    std::ifstream meta(out + "/meta.json");
    ASSERT_TRUE(meta) << out;
    const auto m = nlohmann::json::parse(meta);
    EXPECT_EQ(m.at("kind"), model);
    EXPECT_EQ(m.at("provenance").at("config_hash").get<std::string>().size(), 16u);
    EXPECT_NE(m.at("provenance").at("config").get<std::string>().find("model = " + model), std::string::npos);
  }
  // The one-line form.
  const auto r = run_command(bin() + " train-clf --log.level warn --data " + cohort() + " --model xgb --out " +
                             dir_->file("line"));
  EXPECT_NE(r.output.find("model=xgb acc="), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" f1="), std::string::npos) << r.output;
}

TEST_F(Cli, ScarcityScenarioTrainsOnReducedData) {
  auto run = [&](const std::string& extra, const std::string& out) {
    const auto r = run_command(bin() + " train-clf --log.level warn --json --model xgb --data " + cohort() +
                               " --out " + dir_->file(out) + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::ifstream meta(dir_->file(out) + "/meta.json");
    return std::make_pair(nlohmann::json::parse(r.output), nlohmann::json::parse(meta));
  };
  const auto [full, full_meta] = run("", "full");
  const auto [pos, pos_meta] = run("--scenario positive --scenario-fraction 0.5", "pos");
  EXPECT_EQ(pos_meta.at("scenario").at("removed_class0"), 0);
  EXPECT_GT(pos_meta.at("scenario").at("removed_class1").get<int>(), 0);
  EXPECT_EQ(pos_meta.at("train_rows").get<int>() + pos_meta.at("scenario").at("removed_class1").get<int>(),
            full_meta.at("train_rows").get<int>());
  // Half of the positives gone: the classifier finds fewer of them.
  EXPECT_LT(pos.at("recall").get<double>(), full.at("recall").get<double>());
}

TEST_F(Cli, ConfigFileAndCommandLinePrecedence) {
  const auto ini = dir_->write("run.ini", "[data]\npath = " + cohort() + "\n[clf]\nmodel = svm\n[train]\njson = true\n");
  const auto r = run_command(bin() + " train-clf --log.level warn --config " + ini + " --model xgb --out " +
                             dir_->file("cfg"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output).at("model"), "xgb");  // CLI beats file
}

TEST_F(Cli, Fig1CurveCoversAllClassifiers) {
  const auto r = run_command(bin() + " train-clf --log.level warn --json --data " + cohort() +
                             " --reduce 0.5 --clf.nn_max_epochs 30 --out " + dir_->file("fig1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = nlohmann::json::parse(r.output);
  ASSERT_EQ(rows.size(), 8u);  // reductions {0, 0.5} x 4 classifiers
  EXPECT_LT(rows[4].at("n_train").get<int>(), rows[0].at("n_train").get<int>());
  std::ifstream csv(dir_->file("fig1") + "/fig1.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "reduction,model,n_train,accuracy,precision,recall,f1,auc");
}

TEST_F(Cli, ExplainAndEvaluateCounterfactuals) {
  const auto model = dir_->file("cf_model");
  auto r = run_command(bin() + " train-clf --log.level warn --data " + cohort() + " --model nn --out " + model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string method : {"nice", "dice-random", "cfnow-greedy"}) {
    const auto csv = dir_->file("cfs_" + method + ".csv");
    // No data flag: the data settings saved with the model apply (evaluate-cf below repeats them, flags win).
    r = run_command(bin() + " explain --log.level warn --json --clf " + model + " --limit 15 --method " + method +
                    " --out " + csv);
    ASSERT_EQ(r.exit_code, 0) << method << "\n" << r.output;
    const auto explained = nlohmann::json::parse(r.output);
    const auto& all = explained.at("all");
    EXPECT_EQ(all.at("n_queries"), 15) << method;
    EXPECT_GT(all.at("n_cfs").get<int>(), 0) << method;
    // Validity is over all queries: a baseline's every returned CF is valid, so it equals coverage.
    EXPECT_EQ(all.at("validity_returned"), 1.0) << method;
    EXPECT_EQ(all.at("validity"), all.at("coverage")) << method;
    EXPECT_EQ(all.at("violations"), 0.0) << method;
    // Every query is in the file, with or without a CF.
    std::ifstream in(csv);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line.rfind("row,participant_id,query,cf_index,found,awake_pct", 0), 0u) << line;
    std::set<std::string> queries;
    while (std::getline(in, line)) queries.insert(line.substr(0, line.find(',')));
    EXPECT_EQ(queries.size(), 15u) << method;
    // evaluate-cf recomputes the same numbers from the file.
    r = run_command(bin() + " evaluate-cf --log.level warn --json --data " + cohort() + " --clf " + model +
                    " --cfs " + csv);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto evaluated = nlohmann::json::parse(r.output).at("all");
    for (const char* key : {"n_queries", "n_cfs", "coverage", "validity", "sparsity", "plausibility"})
      EXPECT_EQ(evaluated.at(key), all.at(key)) << method << " " << key;
    EXPECT_NEAR(evaluated.at("distance").get<double>(), all.at("distance").get<double>(), 1e-9) << method;
  }
  // The LLM method on a random tiny Llama: constrained decoding makes every answer a CF that keeps the
  // immutables, whatever the weights; the fine-tuned mode without an adapter says what to pass.
  const auto tiny = dir_->file("tiny-llama");
  r = run_command(bin() + " lm init-tiny --log.level warn --family llama --out " + tiny);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(bin() + " explain --log.level warn --json --clf " + model + " --limit 6 --method llm:tiny:zero-shot" +
                  " --lm.model " + tiny + " --out " + dir_->file("cfs_llm.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto llm = nlohmann::json::parse(r.output).at("all");
  EXPECT_EQ(llm.at("n_queries"), 6);
  EXPECT_EQ(llm.at("coverage"), 1.0);
  EXPECT_EQ(llm.at("parse_rate"), 1.0);
  EXPECT_EQ(llm.at("violations"), 0.0);
  r = run_command(bin() + " explain --log.level warn --clf " + model + " --method llm:tiny:fine-tuned --lm.model " +
                  tiny);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("needs a LoRA adapter"), std::string::npos) << r.output;
  // A damaged CF file is refused with its line.
  const auto bad = dir_->write("bad_cfs.csv", "row,query,found,target,seconds\n0,0,1,1,abc\n");
  r = run_command(bin() + " evaluate-cf --log.level warn --data " + cohort() + " --clf " + model + " --cfs " + bad);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no column for feature"), std::string::npos) << r.output;
  const auto bad2 = dir_->file("bad2.csv");
  {
    std::ifstream good(dir_->file("cfs_nice.csv"));
    std::ofstream out(bad2);
    std::string header, first;
    std::getline(good, header);
    std::getline(good, first);
    out << header << "\n" << "notanumber" << first.substr(first.find(',')) << "\n";
  }
  r = run_command(bin() + " evaluate-cf --log.level warn --data " + cohort() + " --clf " + model + " --cfs " + bad2);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("bad2.csv:2:1: row expects a number"), std::string::npos) << r.output;
}

// A model knows the rows it was trained on: explain refuses a data file whose
// rows are reordered, another file, or one with a changed value, saying which.
TEST_F(Cli, ExplainRefusesDataThatIsNotTheModelsRows) {
  const auto model = dir_->file("identity_model");
  auto r = run_command(bin() + " train-clf --log.level warn --data " + cohort() + " --model rf --out " + model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines;
  {
    std::ifstream in(cohort());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  auto write = [&](const std::string& name, const std::vector<std::string>& rows) {
    std::ofstream out(dir_->file(name));
    for (const auto& l : rows) out << l << "\n";
    return dir_->file(name);
  };
  auto explain = [&](const std::string& data) {
    return run_command(bin() + " explain --log.level warn --clf " + model + " --data " + data +
                       " --limit 3 --method nice --out " + dir_->file("identity_cfs.csv"));
  };
  r = explain(cohort());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // The last patient's rows moved to the top.
  std::vector<std::string> reordered = {lines[0]};
  reordered.insert(reordered.end(), lines.end() - 12, lines.end());
  reordered.insert(reordered.end(), lines.begin() + 1, lines.end() - 12);
  r = explain(write("reordered.csv", reordered));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("row 0 is patient"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the rows are reordered, or of another file"), std::string::npos) << r.output;
  // One value changed: same patients, same order.
  std::vector<std::string> changed = lines;
  const auto comma = changed[5].find(',');
  changed[5] = changed[5].substr(0, comma + 1) + "99.9" + changed[5].substr(changed[5].find(',', comma + 1));
  r = explain(write("changed.csv", changed));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("but other values"), std::string::npos) << r.output;
  // Fewer rows.
  r = explain(write("fewer.csv", std::vector<std::string>(lines.begin(), lines.end() - 12)));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("was trained on 720 rows"), std::string::npos) << r.output;
}

TEST_F(Cli, BadInputGivesClearErrorsAndExitCodes) {
  struct Case {
    std::string args;
    int exit_code;
    std::string message;
  };
  const auto ragged = dir_->write("ragged.csv", "participant_id,a,high_stress\n1,2,0\n2,3\n");
  const std::vector<Case> cases = {
      {"train-clf --data " + dir_->file("missing.csv"), 1, "cannot open data file"},
      {"train-clf --data " + ragged + " --categorical '' --immutable ''", 1, "ragged.csv:3: expected 3 fields"},
      {"train-clf --data " + cohort() + " --label stress", 1, "no label column 'stress'"},
      {"train-clf --data " + cohort() + " --model tree", 2, "must be one of nn|xgb|rf|svm"},
      {"train-clf --data " + cohort() + " --clf.nn_hiden 8", 2, "did you mean '--clf.nn_hidden'"},
      {"train-clf --data " + cohort() + " --test-fraction 1.5", 2, "data.test_fraction must be in (0, 1)"},
      {"train-clf", 2, "data.source = csv needs a file: data.path is empty"},
      {"train-clf --data.source synth", 2, "data.source = synth is only for `sensecf sweep`"},
      {"train-clf --data.source aireadi", 2, "is read by `sensecf sweep`"},
      {"ingest --aireadi " + dir_->file("no-release"), 2, "does not exist or is not a folder"},
      {"train-clf --data.source parquet", 2, "must be one of csv|synth|aireadi"},
      {"synth --participants 3", 2, "participants"},
  };
  for (const auto& c : cases) {
    const auto r = run_command(bin() + " " + c.args + " --log.level warn");
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace sensecf
