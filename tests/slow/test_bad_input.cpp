// The bad-input regression suite: the real `sensecf` binary fed damaged model
// directories, non-UTF-8 and subnormal data, configs fed back from meta.json,
// impossible devices and token ids, NaN checkpoints and adapters, and results
// files that are not sensecf's. Each case asserts the exit code, the message
// (what and where) and that a hint (how to fix it) is printed; none may end in
// "please report" or a backtrace. Cases of earlier fixes live in test_cli.cpp
// (data identity, ragged rows, option typos) and tests/mpi (signals, resume).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace sensecf {
namespace {

namespace fs = std::filesystem;
using test::run_command;

std::string bin() { return test::sensecf_bin(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }
void write_json(const std::string& path, const nlohmann::json& j) { write_file(path, j.dump(2)); }

// Overwrites every float32 of the first tensor whose name contains `part` with
// NaN, in a safetensors file (8-byte header length, JSON header, data).
void poison_safetensors(const std::string& path, const std::string& part) {
  std::string bytes = read_file(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  for (const auto& [name, t] : header.items()) {
    if (name == "__metadata__" || name.find(part) == std::string::npos) continue;
    ASSERT_EQ(t.at("dtype"), "F32") << name;
    const auto begin = t.at("data_offsets")[0].get<std::size_t>(), end = t.at("data_offsets")[1].get<std::size_t>();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t at = 8 + n + begin; at < 8 + n + end; at += 4) std::memcpy(&bytes[at], &nan, 4);
    write_file(path, bytes);
    return;
  }
  FAIL() << "no tensor named like '" << part << "' in " << path;
}

// The checks every error must pass: exit code, the message, a hint, and no
// sign of an unexpected exception.
void expect_error(const test::CommandResult& r, int exit_code, const std::string& message) {
  EXPECT_EQ(r.exit_code, exit_code) << r.output;
  EXPECT_NE(r.output.find(message), std::string::npos) << "expected '" << message << "' in:\n" << r.output;
  EXPECT_NE(r.output.find("  hint: "), std::string::npos) << "no hint in:\n" << r.output;
  EXPECT_EQ(r.output.find("please report"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("frame #"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(".cpp:"), std::string::npos) << "a source path in:\n" << r.output;
}

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    auto r = run_command(bin() + " synth --participants 40 --synth.windows 10 --seed 3 --out " + cohort() +
                         " --log.level warn");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const std::string kind : {"rf", "svm"}) {
      r = run_command(bin() + " train-clf --data " + cohort() + " --model " + kind + " --out " + model(kind) +
                      " --log.level warn");
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    r = run_command(bin() + " lm init-tiny --out " + tiny() + " --log.level warn");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string cohort() { return dir_->file("cohort.csv"); }
  static std::string model(const std::string& kind) { return dir_->file("model_" + kind); }
  static std::string tiny() { return dir_->file("tiny"); }
  // A copy of a trained model to damage.
  static std::string copy_model(const std::string& kind, const std::string& name) {
    const auto to = dir_->file(name);
    fs::remove_all(to);
    fs::copy(model(kind), to, fs::copy_options::recursive);
    return to;
  }
  static test::CommandResult explain(const std::string& model_dir) {
    return run_command(bin() + " explain --clf " + model_dir + " --data " + cohort() + " --limit 2 --method nice --out " +
                       dir_->file("cfs.csv") + " --log.level warn");
  }
  static test::TempDir* dir_;
};
test::TempDir* BadInput::dir_ = nullptr;

// --- model directories -----------------------------------------------------------

TEST_F(BadInput, ModelFilesCarryChecksumsVerifiedAtLoad) {
  const auto meta = read_json(model("svm") + "/meta.json");
  ASSERT_TRUE(meta.contains("files")) << meta.dump();
  EXPECT_EQ(meta.at("files").size(), 3u) << meta.at("files").dump();  // svm.model, encoder.json, schema.json
  EXPECT_EQ(explain(model("svm")).exit_code, 0);

  // Truncated: it used to load and predict.
  auto dir = copy_model("svm", "svm_truncated");
  const auto text = read_file(dir + "/svm.model");
  write_file(dir + "/svm.model", text.substr(0, text.size() / 2));
  expect_error(explain(dir), 1, "model file '" + dir + "/svm.model' is damaged or was edited: its size changed");

  // One byte changed, same size.
  dir = copy_model("rf", "rf_flipped");
  std::string bytes = read_file(dir + "/model.json");
  bytes[bytes.size() / 2] = bytes[bytes.size() / 2] == '1' ? '2' : '1';
  write_file(dir + "/model.json", bytes);
  expect_error(explain(dir), 1, "'" + dir + "/model.json' is damaged or was edited: its bytes changed");

  // A file gone.
  dir = copy_model("rf", "rf_missing");
  fs::remove(dir + "/schema.json");
  expect_error(explain(dir), 1, "model file '" + dir + "/schema.json' is missing (meta.json lists it)");
}

TEST_F(BadInput, DamagedMetaAndSchemaAreNamed) {
  auto dir = copy_model("rf", "rf_meta_array");
  write_file(dir + "/meta.json", "[1, 2]");
  expect_error(explain(dir), 1, "'" + dir + "/meta.json' holds a JSON array, not an object");

  dir = copy_model("rf", "rf_meta_kind");
  auto meta = read_json(dir + "/meta.json");
  meta["kind"] = "gbm";
  write_json(dir + "/meta.json", meta);
  expect_error(explain(dir), 1, "'" + dir + "/meta.json' names classifier kind \"gbm\"");

  // A model from before checksums (no "files") with lower > upper: it used to
  // give 0 counterfactuals without a word.
  dir = copy_model("rf", "rf_bounds");
  meta = read_json(dir + "/meta.json");
  meta.erase("files");
  write_json(dir + "/meta.json", meta);
  auto schema = read_json(dir + "/schema.json");
  auto& f = schema["features"][0];
  const auto lower = f["lower"];
  f["lower"] = f["upper"];
  f["upper"] = lower;
  write_json(dir + "/schema.json", schema);
  expect_error(explain(dir), 1, "'" + dir + "/schema.json': feature 'awake_pct' has bounds [");
  const auto r = explain(dir);
  EXPECT_NE(r.output.find("they must be finite with lower <= upper"), std::string::npos) << r.output;
}

TEST_F(BadInput, ModelIsWrittenWholeOrNotAtAll) {
  // Retraining into a model directory replaces it; a directory that is not a
  // model is never written over.
  const auto keep = dir_->file("not_a_model");
  fs::create_directories(keep);
  write_file(keep + "/notes.txt", "mine");
  auto r = run_command(bin() + " train-clf --data " + cohort() + " --model rf --out " + keep + " --log.level warn");
  expect_error(r, 1, "'" + keep + "' exists and is not a model directory");
  EXPECT_EQ(read_file(keep + "/notes.txt"), "mine");

  const auto again = copy_model("rf", "rf_again");
  r = run_command(bin() + " train-clf --data " + cohort() + " --model rf --out " + again + " --log.level warn");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(explain(again).exit_code, 0);
  for (const auto& entry : fs::directory_iterator(dir_->file(""))) {
    EXPECT_EQ(entry.path().filename().string().find(".partial-"), std::string::npos) << entry.path();
  }
}

// --- data files ----------------------------------------------------------------------

TEST_F(BadInput, NonUtf8DataIsRefusedBeforeTrainingWithItsPlace) {
  const std::string data = read_file(cohort());
  std::string latin1 = data;
  latin1.replace(latin1.find("female"), 6, "f\xE9male");  // Latin-1 é
  const auto path = dir_->file("latin1.csv");
  write_file(path, latin1);
  const auto out = dir_->file("latin1_model");
  const auto r = run_command(bin() + " train-clf --data " + path + " --model rf --out " + out + " --log.level warn");
  expect_error(r, 1, "latin1.csv:2:");
  EXPECT_NE(r.output.find("byte 0xE9 is not UTF-8 text"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out)) << "a half-written model directory was left behind";

  std::string header = data;
  const auto at = header.find("awake_pct");
  header.replace(at, 9, "awake_p\xE9t");
  write_file(path, header);
  expect_error(run_command(bin() + " train-clf --data " + path + " --out " + out + " --log.level warn"), 1,
               "latin1.csv:1:" + std::to_string(at + 8) + ": byte 0xE9 is not UTF-8 text");
}

TEST_F(BadInput, SubnormalNumbersAreNumbers) {
  // 4.9e-320 underflows strtod (ERANGE) but is a number: the column stays
  // continuous instead of being taken for text (categorical).
  std::string data = read_file(cohort());
  const auto line2 = data.find('\n') + 1;
  const auto field = data.find(',', line2) + 1;
  data.replace(field, data.find(',', field) - field, "4.9e-320");
  const auto path = dir_->file("subnormal.csv");
  write_file(path, data);
  const auto out = dir_->file("subnormal_model");
  const auto r = run_command(bin() + " train-clf --data " + path + " --model rf --out " + out + " --log.level warn");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto schema = read_json(out + "/schema.json");
  EXPECT_EQ(schema["features"][0]["name"], "awake_pct");
  EXPECT_EQ(schema["features"][0]["kind"], "continuous") << schema["features"][0].dump();
  const auto opt = run_command(bin() + " train-clf --data " + cohort() + " --clf.nn_weight_decay 1e-310 --model rf --out " +
                               dir_->file("subnormal_option") + " --log.level warn");
  EXPECT_EQ(opt.exit_code, 0) << opt.output;
}

TEST_F(BadInput, EffectiveConfigFromMetaJsonRunsAgain) {
  // meta.json's provenance holds the effective configuration ("key = value   # source");
  // fed back with --config it reproduces the model.
  const auto meta = read_json(model("rf") + "/meta.json");
  const auto config = dir_->write("effective.ini", meta.at("provenance").at("config").get<std::string>());
  ASSERT_NE(read_file(config).find("# default"), std::string::npos);
  const auto out = dir_->file("rf_from_config");
  const auto r = run_command(bin() + " train-clf --config " + config + " --out " + out + " --log.level warn");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(out + "/meta.json").at("test_metrics"), meta.at("test_metrics"));
  EXPECT_EQ(read_json(out + "/meta.json").at("data_identity"), meta.at("data_identity"));
}

TEST_F(BadInput, NegativeCountsAreNamedAsSuch) {
  expect_error(run_command(bin() + " explain --clf " + model("rf") + " --data " + cohort() + " --limit -1"), 2,
               "option 'explain.limit': expected a whole number >= 0, got '-1'");
}

// --- LLM inputs ------------------------------------------------------------------------

TEST_F(BadInput, DevicesAreCheckedBeforeAnythingLoads) {
  const auto generate = [&](const std::string& device) {
    return run_command(bin() + " lm generate --model " + tiny() + " --prompt hi --max-new-tokens 2 --device " + device +
                       " --log.level warn");
  };
  expect_error(generate("tpu"), 2, "lm.device must be cpu, cuda or cuda:N (N a GPU number), found 'tpu'");
  expect_error(generate("cuda:x"), 2, "found 'cuda:x'");
  // This test machine has no GPU (a CUDA build run on one would pass cuda:0; cuda:99 is absent anywhere).
  const auto r = generate("cuda:99");
  expect_error(r, 2, "lm.device = cuda:99, but");
}

TEST_F(BadInput, TokenIdsOutsideTheVocabularyAreNamed) {
  expect_error(run_command(bin() + " lm generate --model " + tiny() + " --ids 5,999999 --log.level warn"), 1,
               "token id 999999 (sequence 0, position 1) is outside the model's vocabulary: ids run from 0 to");
  const auto prompts = dir_->write("prompts.jsonl", "{\"ids\": [1, 2]}\n{\"ids\": [1, 70000]}\n");
  expect_error(run_command(bin() + " lm generate --model " + tiny() + " --prompts " + prompts + " --log.level warn"), 1,
               "token id 70000 (sequence 1, position 1)");
  expect_error(run_command(bin() + " lm logits --model " + tiny() + " --ids 3,99999 --out " + dir_->file("l.npy") +
                           " --log.level warn"),
               1, "token id 99999");
}

TEST_F(BadInput, NanWeightsAndAdaptersAreNamedNotGenerated) {
  // A checkpoint with a NaN tensor: it used to "generate" text from NaN logits.
  const auto model_dir = dir_->file("tiny_nan");
  fs::remove_all(model_dir);
  fs::copy(tiny(), model_dir, fs::copy_options::recursive);
  poison_safetensors(model_dir + "/model.safetensors", "model.norm.weight");
  expect_error(run_command(bin() + " lm generate --model " + model_dir + " --prompt hi --log.level warn"), 1,
               "the model computed NaN or infinite logits: weight 'model.norm.weight' holds NaN or infinite values");

  // An adapter with a NaN tensor is refused when it is loaded.
  const auto adapter = dir_->file("lora_nan");
  auto r = run_command(bin() + " lm init-adapter --model " + tiny() + " --out " + adapter + " --log.level warn");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  poison_safetensors(adapter + "/adapter_model.safetensors", "lora_A");
  r = run_command(bin() + " lm generate --model " + tiny() + " --adapter " + adapter + " --prompt hi --log.level warn");
  expect_error(r, 1, "holds NaN or infinite values; the adapter would turn every output into NaN");
  EXPECT_NE(r.output.find("adapter_model.safetensors: tensor '"), std::string::npos) << r.output;
}

// --- results files -----------------------------------------------------------------------

TEST_F(BadInput, ResultsFilesOfAnotherShapeAreNamed) {
  // Written by another program (h5py): a format_version attribute, but /tasks
  // a plain integer array.
  const auto python = run_command("/usr/bin/python3 -c 'import h5py'");
  if (python.exit_code != 0) GTEST_SKIP() << "needs h5py for /usr/bin/python3";
  const auto path = dir_->file("other.h5");
  const auto w = run_command("/usr/bin/python3 -c \"import h5py, numpy as np\nwith h5py.File('" + path +
                             "', 'w') as f:\n    f.attrs['format_version'] = '1'\n    f['tasks'] = np.arange(3)\"");
  ASSERT_EQ(w.exit_code, 0) << w.output;
  expect_error(run_command(bin() + " report --results " + path + " --out " + dir_->file("rep") + " --log.level warn"), 1,
               "'" + path + "': '/tasks' is not a table (an HDF5 compound dataset)");
}

}  // namespace
}  // namespace sensecf
