// The tiny model sensecf makes itself: BPE training on a corpus and the
// from-scratch pretraining that the quickstart's LLM starts from.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/text/bpe_train.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llm/train/pretrain.h"
#include "test_util.h"

namespace sensecf {
namespace {

std::vector<std::string> corpus() {
  std::vector<std::string> docs;
  for (int i = 0; i < 40; ++i) {
    docs.push_back("<new>\n- awake_pct (%): " + std::to_string(10 + i % 7) + ".5\n- glucose_mean (mg/dL): " +
                   std::to_string(100 + 3 * i) + "\n- gender: female\n</new>");
  }
  return docs;
}

TEST(LlmBpeTrain, MergesTheMostFrequentPairFirstAndTiesByText) {
  // The Llama-3 split makes the words "ab" x1, " ab" x2, " cd" x3, " ef" x2, so
  // the pairs count ("a","b") 3, (" ","c") 3, ("c","d") 3, (" ","a") 2,
  // (" ","e") 2, ("e","f") 2. Ties resolve by text (' ' < 'a' < 'c'):
  // (" ","c") first; then (" c","d") 3 ties with ("a","b") 3 and wins by text.
  const auto merges = llm::train_bpe_merges({"ab ab ab cd cd cd ef ef"}, 10);
  using P = std::pair<std::string, std::string>;
  ASSERT_GE(merges.size(), 4u);
  EXPECT_EQ(merges[0], P(" ", "c"));
  EXPECT_EQ(merges[1], P(" c", "d"));
  EXPECT_EQ(merges[2], P("a", "b"));
  // Only pairs seen at least twice: (" ","a") 2, (" ","e") 2, ("e","f") 2 follow; nothing seen once.
  for (const auto& m : merges) EXPECT_NE(m, P("ab", " ")) << "a pair seen once is never merged";
  EXPECT_LE(merges.size(), 6u);
}

TEST(LlmBpeTrain, TheTokenizerRoundTripsAndCompressesItsCorpus) {
  const auto docs = corpus();
  const auto merges = llm::train_bpe_merges(docs, 200);
  const llm::Tokenizer fitted = llm::Tokenizer::from_json(llm::byte_level_bpe_json(merges), "fitted");
  const llm::Tokenizer tiny = llm::Tokenizer::from_json(llm::tiny_tokenizer_json("llama"), "tiny");
  std::size_t n_fitted = 0, n_tiny = 0;
  for (const auto& d : docs) {
    const auto ids = fitted.encode(d);
    EXPECT_EQ(fitted.decode(ids), d);
    n_fitted += ids.size();
    n_tiny += tiny.encode(d).size();
  }
  EXPECT_LT(2 * n_fitted, n_tiny) << "a tokenizer fitted to the corpus needs far fewer tokens";
  ASSERT_TRUE(fitted.token_id("<|end_of_text|>"));
  EXPECT_TRUE(fitted.is_special(*fitted.token_id("<|end_of_text|>")));
}

TEST(LlmPretrain, LearnsItsCorpusAndWritesALoadableModel) {
  test::TempDir dir;
  llm::PretrainOptions o;
  o.out_dir = dir.file("tiny");
  o.merges = 100;
  o.epochs = 30;
  o.batch_size = 8;
  o.lr = 1e-2;
  const auto r = llm::pretrain_tiny_llama(corpus(), o);
  EXPECT_EQ(r.steps, 30 * 5);
  EXPECT_LT(r.last_loss, 0.35 * r.first_loss) << "first " << r.first_loss << " last " << r.last_loss;
  for (const char* f : {"config.json", "tokenizer.json", "model.safetensors", "pretrain_curve.csv"})
    EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/" + f)) << f;
  EXPECT_FALSE(std::filesystem::exists(o.out_dir + ".tmp"));

  // The written model continues a corpus prefix as the corpus does.
  const auto model = llm::CausalLM::load(o.out_dir);
  const auto tok = llm::Tokenizer::load(o.out_dir + "/tokenizer.json");
  std::vector<int> prompt{*tok.bos_id()};
  const auto body = tok.encode("<new>\n- awake_pct (%): 12.5\n- glucose_mean (mg/dL): 1");
  prompt.insert(prompt.end(), body.begin(), body.end());
  llm::GenerationOptions g;
  g.max_new_tokens = 30;
  g.stop_ids = {*tok.token_id("<|end_of_text|>")};
  const auto out = llm::generate(*model, {prompt}, g, g.stop_ids.front());
  const std::string text = tok.decode(out[0], true);
  EXPECT_NE(text.find("\n- gender: female\n</new>"), std::string::npos) << text;
}

TEST(LlmPretrain, AnEmptyCorpusIsRefused) {
  llm::PretrainOptions o;
  o.out_dir = "unused";
  const std::vector<std::string> none;
  EXPECT_THROW(llm::pretrain_tiny_llama(none, o), Error);
}

}  // namespace
}  // namespace sensecf
