// The two binaries (docs/binaries.md): the front-end `sensecf` links no
// LibTorch, CUDA or NCCL, serves help, versions and every case without a
// LibTorch model itself, and hands the others to sensecf-full with the same
// argv, whose outputs are then those of sensecf-full run directly.
//
// "Served by the front-end" is checked by pointing SENSECF_FULL_BINARY at a
// file that does not exist: a hand-over then fails, saying so, before any
// output file is written. CF files are compared without their `seconds`
// column (each query's wall time).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_util.h"

namespace sensecf {
namespace {

using test::run_command;

std::string front() { return test::sensecf_bin(); }
std::string full() { return SENSECF_FULL_BIN_PATH; }
// The front-end with no sensecf-full to hand over to.
std::string front_alone() { return "SENSECF_FULL_BINARY=/nonexistent/sensecf-full " + front(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A CF file without its `seconds` column. The columns before it hold numbers
// and ids, never a comma.
std::string without_seconds(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string header, line, out;
  std::getline(in, header);
  const auto at = header.find(",seconds,");
  EXPECT_NE(at, std::string::npos) << header;
  std::size_t column = 1;
  for (std::size_t i = 0; i < at; ++i) column += header[i] == ',';
  out = header + "\n";
  while (std::getline(in, line)) {
    std::size_t begin = 0;
    for (std::size_t c = 0; c < column; ++c) begin = line.find(',', begin) + 1;
    const std::size_t end = line.find(',', begin);
    out += line.substr(0, begin) + line.substr(end + 1) + "\n";
  }
  return out;
}

class FrontEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    auto r = run_command(full() + " synth -q --participants 60 --synth.windows 12 --seed 7 --out " + cohort());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* kind : {"xgb", "nn"}) {
      r = run_command(full() + " train-clf -q --data " + cohort() + " --model " + kind + " --out " + model(kind));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string cohort() { return dir_->file("cohort.csv"); }
  static std::string model(const std::string& kind) { return dir_->file("model_" + kind); }
  static std::string explain(const std::string& kind, const std::string& method, const std::string& out) {
    return " explain -q --clf " + model(kind) + " --method " + method + " --limit 20 --out " + out;
  }
  static test::TempDir* dir_;
};
test::TempDir* FrontEnd::dir_ = nullptr;

TEST_F(FrontEnd, LinksNoLibTorchCudaOrNccl) {
  const auto needed = run_command("readelf -d " + front());
  ASSERT_EQ(needed.exit_code, 0) << needed.output;
  ASSERT_NE(needed.output.find("(NEEDED)"), std::string::npos) << needed.output;
  for (const char* lib : {"libtorch", "libc10", "libcudart", "libnccl", "libcurl"})
    EXPECT_EQ(needed.output.find(lib), std::string::npos) << lib << " in\n" << needed.output;
  // The check means something: sensecf-full does link LibTorch.
  EXPECT_NE(run_command("readelf -d " + full()).output.find("libtorch_cpu"), std::string::npos);
}

TEST_F(FrontEnd, ServesHelpAndVersionWithoutLoadingLibTorch) {
  for (const std::string args : {"--help", "--version", "explain --help", "train-clf --help", "evaluate-cf --help",
                                 "synth --help", "report --help", "status --help", "export --help"}) {
    const auto alone = run_command("LD_DEBUG=libs " + front_alone() + " " + args);
    EXPECT_EQ(alone.exit_code, 0) << args << "\n" << alone.output.substr(0, 2000);
    EXPECT_EQ(alone.output.find("libtorch"), std::string::npos) << args << " loaded LibTorch";
    // The same text as sensecf-full's.
    const auto mine = run_command(front() + " " + args);
    const auto theirs = run_command(full() + " " + args);
    EXPECT_EQ(mine.exit_code, theirs.exit_code) << args;
    EXPECT_EQ(mine.output, theirs.output) << args;
  }
}

TEST_F(FrontEnd, HandsLibTorchCommandsToTheFullBinary) {
  for (const std::string args : {"lm --help", "sweep --help", "info --help"}) {
    const auto alone = run_command(front_alone() + " " + args);
    EXPECT_EQ(alone.exit_code, 1) << args << "\n" << alone.output;
    EXPECT_NE(alone.output.find("this needs sensecf-full"), std::string::npos) << args << "\n" << alone.output;
    const auto mine = run_command(front() + " " + args);
    const auto theirs = run_command(full() + " " + args);
    EXPECT_EQ(mine.exit_code, theirs.exit_code) << args;
    EXPECT_EQ(mine.output, theirs.output) << args;
  }
}

TEST_F(FrontEnd, ServesAnXgbExplainItselfWithTheFullBinarysOutput) {
  const auto mine = dir_->file("xgb_front.csv"), theirs = dir_->file("xgb_full.csv");
  auto r = run_command(front_alone() + explain("xgb", "nice-sparsity", mine));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(full() + explain("xgb", "nice-sparsity", theirs));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(read_file(theirs).find(",1,"), std::string::npos) << "some query has a CF";
  EXPECT_EQ(without_seconds(mine), without_seconds(theirs));
  // evaluate-cf of that file: the same numbers, byte for byte.
  const std::string evaluate = " evaluate-cf -q --json --clf " + model("xgb") + " --cfs " + theirs;
  const auto a = run_command(front_alone() + evaluate), b = run_command(full() + evaluate);
  EXPECT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
}

TEST_F(FrontEnd, HandsAnNnExplainToTheFullBinaryBeforeWritingAnything) {
  const auto alone = dir_->file("nn_alone.csv");
  auto r = run_command(front_alone() + explain("nn", "nice-sparsity", alone));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.rfind("sensecf explain: error: this needs sensecf-full", 0), 0u) << "no log line before:\n"
                                                                                      << r.output;
  EXPECT_FALSE(std::filesystem::exists(alone));

  const auto mine = dir_->file("nn_front.csv"), theirs = dir_->file("nn_full.csv");
  r = run_command(front() + explain("nn", "nice-sparsity", mine));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(full() + explain("nn", "nice-sparsity", theirs));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(read_file(theirs).find(",1,"), std::string::npos) << "some query has a CF";
  EXPECT_EQ(without_seconds(mine), without_seconds(theirs));
}

TEST_F(FrontEnd, HandsLibTorchMethodsAndNnTrainingToTheFullBinary) {
  for (const std::string& args :
       {explain("xgb", "nice-plausibility", dir_->file("p.csv")), explain("xgb", "llm:tiny:zero", dir_->file("l.csv")),
        explain("nn", "dice-random", dir_->file("d.csv")), " evaluate-cf --clf " + model("nn") + " --cfs x.csv",
        " train-clf --data " + cohort() + " --model nn --out " + dir_->file("m"),
        " train-clf --data " + cohort() + " --model xgb --reduce 0.5 --out " + dir_->file("m")}) {
    const auto r = run_command(front_alone() + args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("this needs sensecf-full"), std::string::npos) << args << "\n" << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_->file("m")));
  for (const char* csv : {"p.csv", "l.csv", "d.csv"}) EXPECT_FALSE(std::filesystem::exists(dir_->file(csv))) << csv;
}

TEST_F(FrontEnd, ErrorsReadAsTheFullBinarys) {
  // -q: no info line, whose time stamp differs.
  for (const std::string& args : {std::string(" explain -q --clf ") + model("xgb") + " --metod nice",
                                 std::string(" explain -q --clf ") + dir_->file("no_such_model") + " --out x.csv",
                                 std::string(" explain -q --clf ") + model("xgb") + " --method nicee",
                                 std::string(" train-clf -q --data ") + dir_->file("missing.csv") + " --model rf",
                                 std::string(" nonsense")}) {
    const auto mine = run_command(front() + args);
    const auto theirs = run_command(full() + args);
    EXPECT_NE(mine.exit_code, 0) << args;
    EXPECT_EQ(mine.exit_code, theirs.exit_code) << args;
    EXPECT_EQ(mine.output, theirs.output) << args;
  }
}

}  // namespace
}  // namespace sensecf
