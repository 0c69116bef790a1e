// The Llama/Mistral model on random tiny checkpoints: the KV-cache path equals
// the full forward pass, a left-padded batch generates what each prompt
// generates alone, sampling is reproducible per seed, and checkpoint errors
// are clear. (Logits vs an independent implementation:
// tests/python/test_llm_reference.py; vs transformers: tests/golden/llm/.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "sensecf/core/error.h"
#include "sensecf/llm/model.h"
#include "sensecf/llm/tiny.h"
#include "test_util.h"

namespace sensecf::llm {
namespace {

class TinyModel : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { dir_ = new test::TempDir(); }
  static void TearDownTestSuite() { delete dir_; }
  std::string model_dir() {
    const std::string dir = dir_->file(GetParam());
    if (!std::filesystem::exists(dir + "/config.json")) write_tiny_checkpoint(dir, GetParam(), 11);
    return dir;
  }
  static test::TempDir* dir_;
};
test::TempDir* TinyModel::dir_ = nullptr;

std::vector<int> some_ids(int n, int vocab, int salt) {
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) ids.push_back((i * 37 + salt * 11 + 5) % vocab);
  return ids;
}

TEST_P(TinyModel, KvCacheMatchesTheFullForwardPass) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  const auto ids = some_ids(40, vocab, 1);  // longer than Mistral's tiny sliding window (16)
  const auto full = model->logits(ids);
  const auto step = model->logits_incremental(ids);
  ASSERT_EQ(full.size(), ids.size() * static_cast<std::size_t>(vocab));
  ASSERT_EQ(full.size(), step.size());
  double max_diff = 0;
  for (std::size_t i = 0; i < full.size(); ++i) max_diff = std::max(max_diff, std::abs(double(full[i]) - step[i]));
  EXPECT_LT(max_diff, 1e-4);
}

TEST_P(TinyModel, LeftPaddedBatchGeneratesWhatEachPromptGeneratesAlone) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  const std::vector<std::vector<int>> prompts = {some_ids(3, vocab, 2), some_ids(11, vocab, 3), some_ids(7, vocab, 4)};
  GenerationOptions o;
  o.max_new_tokens = 12;
  const auto batch = generate(*model, prompts, o, /*pad_id=*/0);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto alone = generate(*model, {prompts[i]}, o, 0);
    EXPECT_EQ(batch[i], alone[0]) << "prompt " << i;
    EXPECT_EQ(batch[i].size(), 12u);
  }
}

TEST_P(TinyModel, SamplingIsReproducibleAndSeedsDiffer) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  GenerationOptions o;
  o.max_new_tokens = 16;
  o.temperature = 1.5;
  o.top_k = 50;
  o.top_p = 0.95;
  o.seed = 1;
  const auto a = generate(*model, {some_ids(5, vocab, 5)}, o, 0);
  const auto b = generate(*model, {some_ids(5, vocab, 5)}, o, 0);
  o.seed = 2;
  const auto c = generate(*model, {some_ids(5, vocab, 5)}, o, 0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_P(TinyModel, StopTokenEndsASequence) {
  const auto model = CausalLM::load(model_dir());
  const int vocab = static_cast<int>(model->config().vocab_size);
  GenerationOptions o;
  o.max_new_tokens = 10;
  const auto free_run = generate(*model, {some_ids(4, vocab, 6)}, o, 0)[0];
  o.stop_ids = {free_run[2]};
  const auto stopped = generate(*model, {some_ids(4, vocab, 6)}, o, 0)[0];
  // ends at the first occurrence of the stop token, which is kept
  const auto first = std::find(free_run.begin(), free_run.end(), free_run[2]) - free_run.begin();
  EXPECT_EQ(stopped, std::vector<int>(free_run.begin(), free_run.begin() + first + 1));
}

INSTANTIATE_TEST_SUITE_P(Families, TinyModel, ::testing::Values("llama", "mistral"));

TEST(CausalLMLoad, MissingTensorIsNamed) {
  test::TempDir dir;
  write_tiny_checkpoint(dir.file("m"), "llama", 1);
  // A config that claims one more layer than the weights hold.
  std::ifstream in(dir.file("m/config.json"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto pos = text.find("\"num_hidden_layers\": 2");
  ASSERT_NE(pos, std::string::npos) << text;
  text.replace(pos, 22, "\"num_hidden_layers\": 3");
  std::ofstream(dir.file("m/config.json")) << text;
  EXPECT_THROW_WITH(CausalLM::load(dir.file("m")), Error, "model.layers.2.");
}

}  // namespace
}  // namespace sensecf::llm
