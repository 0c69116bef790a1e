// llm::Tokenizer and chat templates on hand-made tokenizer.json files: the two
// tiny tokenizers of write_tiny_tokenizer (ids computed by hand below from its
// merge list), malformed files, and decode(encode(x)) == x over the golden
// corpus. Exactness on the real Llama-3.1 / Llama-2 files is the golden test's
// job (tests/golden/run_tokenizer_golden.sh); set SENSECF_LLAMA3_TOKENIZER /
// SENSECF_LLAMA2_TOKENIZER to also round-trip the corpus through them here.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "sensecf/core/error.h"
#include "sensecf/llm/text/chat.h"
#include "sensecf/llm/text/tokenizer.h"
#include "test_util.h"

namespace sensecf::llm {
namespace {

using Ids = std::vector<int>;

// Tiny llama (byte-level): id = byte value for the 256 byte tokens; merges add
// 256 "Ġt", 257 "he", 258 "in", 259 "Ġthe", ... 290 "Ġg", 291 "lu", 293 "co",
// 295 "se", 296 "glucose", 300 "00"; specials 305..309.
const Tokenizer& tiny_llama() {
  static const Tokenizer t = Tokenizer::from_json(tiny_tokenizer_json("llama"), "tiny-llama");
  return t;
}
// Tiny mistral (sentencepiece-style): <unk> 0, <s> 1, </s> 2, <0x00>.. = 3.., "▁" 259,
// 'a'..'z' 260..285; merges add 306 "▁t", 307 "he", 309 "▁the", 340 "▁g", 341 "lu",
// 343 "co", 345 "se".
const Tokenizer& tiny_mistral() {
  static const Tokenizer t = Tokenizer::from_json(tiny_tokenizer_json("mistral"), "tiny-mistral");
  return t;
}

std::vector<std::string> golden_corpus() {
  std::vector<std::string> lines;
  std::ifstream in(std::string(SENSECF_TEST_SOURCE_DIR) + "/golden/tokenizer/corpus.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line).get<std::string>());
  }
  return lines;
}

// The message of the sensecf::Error thrown by loading `json_text`.
std::string load_error(const std::string& json_text) {
  try {
    Tokenizer::from_json(json_text, "bad.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

nlohmann::json tiny_json(const std::string& family) { return nlohmann::json::parse(tiny_tokenizer_json(family)); }

TEST(Tokenizer, TinyByteLevelHandComputedIds) {
  const Tokenizer& t = tiny_llama();
  EXPECT_EQ(t.vocab_size(), 310);
  EXPECT_EQ(t.encode("the"), (Ids{'t', 257}));             // "h e" (rank 1) before "t h" (rank 16)
  EXPECT_EQ(t.encode(" the"), (Ids{259}));                // "Ġthe" is in the vocabulary (ignore_merges)
  EXPECT_EQ(t.encode("glucose"), (Ids{296}));
  EXPECT_EQ(t.encode(" glucose"), (Ids{290, 291, 293, 295}));  // Ġg, lu, co, se: "Ġglucose" is not a token
  EXPECT_EQ(t.encode("glucose 100"), (Ids{296, ' ', '1', 300}));  // "1 00": "0 0" ranks before "1 0"
  EXPECT_EQ(t.encode("\xC3\xA9"), (Ids{0xC3, 0xA9}));     // é as its two bytes
  EXPECT_EQ(t.encode(""), Ids{});
}

TEST(Tokenizer, TinyByteLevelSpecialTokens) {
  const Tokenizer& t = tiny_llama();
  EXPECT_EQ(t.bos_id(), 305);
  EXPECT_EQ(t.encode("the", true), (Ids{305, 't', 257}));
  EXPECT_EQ(t.token_id("<|eot_id|>"), 309);
  EXPECT_EQ(t.eos_ids(), (Ids{306, 309}));
  // Plain text never becomes a special id ...
  for (int id : t.encode("<|eot_id|><|begin_of_text|>")) EXPECT_LT(id, 305);
  // ... unless asked.
  EXPECT_EQ(t.encode("a<|eot_id|>the", EncodeOptions{false, true}), (Ids{'a', 309, 't', 257}));
  EXPECT_TRUE(t.is_special(309));
  EXPECT_FALSE(t.is_special(259));
  EXPECT_EQ(t.decode({305, 't', 257, 309}), "<|begin_of_text|>the<|eot_id|>");
  EXPECT_EQ(t.decode({305, 't', 257, 309}, /*skip_special=*/true), "the");
}

TEST(Tokenizer, TinySentencepieceHandComputedIds) {
  const Tokenizer& t = tiny_mistral();
  EXPECT_EQ(t.encode("the"), (Ids{309}));                           // ▁t, he, then ▁t+he
  EXPECT_EQ(t.encode("the glucose"), (Ids{309, 340, 341, 343, 345}));
  EXPECT_EQ(t.encode("Hi"), (Ids{259, 3 + 'H', 260 + ('i' - 'a')}));  // 'H' is not a piece: byte fallback <0x48>
  EXPECT_EQ(t.encode("\xC3\xA9"), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t.encode("the", true), (Ids{1, 309}));
  // Legacy Prepend: every text segment after a special token gets its own "▁".
  EXPECT_EQ(t.encode("the</s>the", EncodeOptions{false, true}), (Ids{309, 2, 309}));
  for (int id : t.encode("<s></s><unk>")) EXPECT_GT(id, 2);
  EXPECT_EQ(t.decode({1, 309, 340, 341, 343, 345}, true), "the glucose");
  EXPECT_EQ(t.decode({1, 309}), "<s> the");
  EXPECT_EQ(t.decode({259, 3 + 0xC3, 3 + 0xA9}), "\xC3\xA9");
  EXPECT_EQ(t.decode({3 + 0xC3}), "\xEF\xBF\xBD");  // a lone lead byte decodes to U+FFFD
}

TEST(Tokenizer, RoundTripOnTheGoldenCorpus) {
  const auto corpus = golden_corpus();
  ASSERT_GT(corpus.size(), 40u);
  for (const Tokenizer* t : {&tiny_llama(), &tiny_mistral()}) {
    for (const std::string& line : corpus) {
      EXPECT_EQ(t->decode(t->encode(line)), line) << t->describe();
      EXPECT_EQ(t->decode(t->encode(line, true), true), line) << t->describe();
    }
  }
  for (const char* env : {"SENSECF_LLAMA3_TOKENIZER", "SENSECF_LLAMA2_TOKENIZER"}) {
    const char* path = std::getenv(env);
    if (!path) continue;
    const Tokenizer t = Tokenizer::load(path);
    for (const std::string& line : corpus) EXPECT_EQ(t.decode(t.encode(line)), line) << env;
  }
}

TEST(Tokenizer, BothMergeFormatsAgree) {
  nlohmann::json j = tiny_json("llama");
  nlohmann::json old_style = nlohmann::json::array();
  for (const auto& m : j["model"]["merges"]) old_style.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  j["model"]["merges"] = old_style;
  const Tokenizer t = Tokenizer::from_json(j.dump());
  for (const std::string& line : golden_corpus()) EXPECT_EQ(t.encode(line), tiny_llama().encode(line));
}

TEST(Tokenizer, IgnoreMergesOff) {
  nlohmann::json j = tiny_json("llama");
  j["model"]["ignore_merges"] = false;
  // "Ġthe" still comes out whole (merges reach it); "glucose" too.
  const Tokenizer t = Tokenizer::from_json(j.dump());
  EXPECT_EQ(t.encode(" the glucose"), (Ids{259, 290, 291, 293, 295}));
  // A vocabulary entry no merge builds: only ignore_merges emits it whole.
  j["model"]["vocab"]["xyz"] = 400;
  EXPECT_EQ(Tokenizer::from_json(j.dump()).encode("xyz"), (Ids{'x', 'y', 'z'}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(Tokenizer::from_json(j.dump()).encode("xyz"), (Ids{400}));
}

TEST(Tokenizer, AddedTokenStripFlags) {
  nlohmann::json j = tiny_json("llama");
  j["added_tokens"].push_back({{"id", 310}, {"content", "[X]"}, {"special", false}, {"lstrip", true},
                               {"rstrip", true}, {"normalized", false}, {"single_word", false}});
  const Tokenizer t = Tokenizer::from_json(j.dump());
  EXPECT_EQ(t.encode("a  [X]  a"), (Ids{'a', 310, 'a'}));  // non-special: matched in plain text too
}

TEST(Tokenizer, MalformedFilesAreRefusedWithThePath) {
  EXPECT_NE(load_error("{\"model\": ").find("bad.json: not valid JSON"), std::string::npos);
  EXPECT_NE(load_error("[1, 2]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(load_error("{}").find("bad.json: model: missing"), std::string::npos);

  nlohmann::json j = tiny_json("llama");
  j["model"]["type"] = "Unigram";
  EXPECT_NE(load_error(j.dump()).find("model type 'Unigram' is not supported (BPE only)"), std::string::npos);

  j = tiny_json("llama");
  j["model"]["merges"][3] = {"Ġt", "hex"};
  EXPECT_NE(load_error(j.dump()).find("model.merges[3]: merge [\"Ġt\",\"hex\"] refers to 'hex'"), std::string::npos);

  j = tiny_json("mistral");
  j["model"]["merges"][2] = "i n g";
  EXPECT_NE(load_error(j.dump()).find("model.merges[2]: expected \"left right\""), std::string::npos);

  j = tiny_json("llama");
  j["model"].erase("vocab");
  EXPECT_NE(load_error(j.dump()).find("model.vocab: missing"), std::string::npos);

  j = tiny_json("llama");
  j["model"]["vocab"]["Ġthe"] = "x";
  EXPECT_NE(load_error(j.dump()).find("model.vocab[\"Ġthe\"]: expected a non-negative integer id"), std::string::npos);

  j = tiny_json("llama");
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+";
  EXPECT_NE(load_error(j.dump()).find("pre_tokenizer.pretokenizers[0].pattern.Regex: this Split regex is not supported"),
            std::string::npos);

  j = tiny_json("mistral");
  j["normalizer"] = {{"type", "NFKC"}};
  EXPECT_NE(load_error(j.dump()).find("normalizer.type: normalizer 'NFKC' is not supported"), std::string::npos);

  j = tiny_json("llama");
  j["added_tokens"][0].erase("content");
  EXPECT_NE(load_error(j.dump()).find("added_tokens[0].content: missing"), std::string::npos);

  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer.json"), Error);
  EXPECT_THROW(tiny_llama().decode({100000}), Error);
}

TEST(Tokenizer, WriteTinyTokenizerLoads) {
  test::TempDir dir;
  for (const char* family : {"llama", "mistral"}) {
    const std::string path = dir.file(std::string(family) + ".json");
    write_tiny_tokenizer(path, family);
    const Tokenizer t = Tokenizer::load(path);
    EXPECT_LE(t.vocab_size(), 512);
    EXPECT_EQ(t.decode(t.encode("glucose 210.8 mg/dL")), "glucose 210.8 mg/dL");
  }
  EXPECT_THROW(write_tiny_tokenizer(dir.file("x.json"), "gpt2"), Error);
}

TEST(ChatTemplate, Llama3Layout) {
  const Tokenizer& t = tiny_llama();
  const std::vector<ChatMessage> messages = {{"system", "  Be brief. "}, {"user", "hi <|eot_id|>"}};
  const Ids ids = apply_chat_template(t, ChatTemplate::kLlama3, messages);
  const std::string text = render_chat_template(ChatTemplate::kLlama3, messages);
  EXPECT_EQ(text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi "
            "<|eot_id|><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // Markers are special ids; the user's "<|eot_id|>" stays text: 2 eot ids, not 3.
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 309), 2);
  EXPECT_EQ(ids.front(), 305);
  // Ends with the assistant header: <|start_header_id|> "assistant" <|end_header_id|> "\n\n".
  Ids expected_tail = {307};
  for (int id : t.encode("assistant")) expected_tail.push_back(id);
  expected_tail.push_back(308);
  for (int id : t.encode("\n\n")) expected_tail.push_back(id);
  ASSERT_GE(ids.size(), expected_tail.size());
  EXPECT_EQ(Ids(ids.end() - static_cast<std::ptrdiff_t>(expected_tail.size()), ids.end()), expected_tail);
  // Same ids as encoding the rendered text with special tokens recognised, when
  // the content has no special-token text.
  const std::vector<ChatMessage> clean = {{"user", "glucose 210.8 mg/dL"}, {"assistant", "the"}, {"user", "ok"}};
  EXPECT_EQ(apply_chat_template(t, ChatTemplate::kLlama3, clean),
            t.encode(render_chat_template(ChatTemplate::kLlama3, clean), EncodeOptions{false, true}));
}

TEST(ChatTemplate, MistralLayout) {
  const Tokenizer& t = tiny_mistral();
  const std::vector<ChatMessage> messages = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
  EXPECT_EQ(render_chat_template(ChatTemplate::kMistral, messages), "<s>[INST] a [/INST]b</s>[INST] c [/INST]");
  Ids expected = {1};
  for (int id : t.encode("[INST] a [/INST]b")) expected.push_back(id);
  expected.push_back(2);
  for (int id : t.encode("[INST] c [/INST]")) expected.push_back(id);
  EXPECT_EQ(apply_chat_template(t, ChatTemplate::kMistral, messages), expected);
  EXPECT_THROW(apply_chat_template(t, ChatTemplate::kMistral, {{"assistant", "x"}}), Error);
  EXPECT_THROW(apply_chat_template(t, ChatTemplate::kLlama3, {{"user", "x"}}), Error);  // no Llama-3 markers
  EXPECT_EQ(guess_chat_template(t), ChatTemplate::kMistral);
  EXPECT_EQ(guess_chat_template(tiny_llama()), ChatTemplate::kLlama3);
}

}  // namespace
}  // namespace sensecf::llm
