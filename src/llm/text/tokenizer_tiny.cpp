// write_tiny_tokenizer: small but complete tokenizer.json files in the two
// layouts sensecf reads (see tokenizer.h), for tests and `sensecf lm init-tiny`.
// They are built here as JSON, the same way the Hugging Face converters lay out
// the real files, so loading them exercises the same code paths.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <utility>
#include <vector>

#include "pretokenize.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/text/tokenizer.h"
#include "unicode.h"

namespace sensecf::llm {
namespace {

using nlohmann::ordered_json;

// Merges of both tiny tokenizers, in rank order, written with ' ' for the space
// (byte-level shows it as "Ġ", sentencepiece-style as "▁").
const std::vector<std::pair<const char*, const char*>> kTinyMerges = {
    {" ", "t"},  {"h", "e"},  {"i", "n"},   {" t", "he"}, {"e", "r"},  {"a", "n"},  {"o", "n"},  {" ", "a"},
    {"r", "e"},  {"e", "n"},  {"a", "t"},   {"o", "r"},   {"e", "s"},  {" ", "s"},  {" ", "c"},  {"i", "s"},
    {"t", "h"},  {" ", "w"},  {"i", "t"},   {"a", "l"},   {" ", "f"},  {"e", "d"},  {" ", "p"},  {"in", "g"},
    {" ", "o"},  {" ", "b"},  {"o", "u"},   {" ", "m"},   {"l", "e"},  {" ", "d"},  {" ", "i"},  {"a", "r"},
    {"n", "d"},  {" a", "nd"}, {" ", "g"},  {"l", "u"},   {"g", "lu"}, {"c", "o"},  {"glu", "co"}, {"s", "e"},
    {"gluco", "se"},
    {" ", "h"},  {"e", "a"},  {" ", "r"},   {"0", "0"},   {"1", "0"},  {" ", "1"},  {"m", "g"},  {" ", "l"},
};

// GPT-2 byte -> unicode alphabet: the token text of a byte.
std::string byte_char(unsigned char b) {
  int n = 0;
  for (int k = 0; k < 256; ++k) {
    const bool keep = (k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF);
    std::uint32_t cp = keep ? static_cast<std::uint32_t>(k) : static_cast<std::uint32_t>(256 + n++);
    if (k == b) {
      std::string s;
      unicode::append_utf8(s, cp);
      return s;
    }
  }
  return {};
}

std::string replace_space(const std::string& s, const std::string& space) {
  std::string out;
  for (char c : s) out += c == ' ' ? space : std::string(1, c);
  return out;
}

ordered_json template_processing(const std::string& bos, int bos_id) {
  ordered_json seq = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
  ordered_json sp = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
  ordered_json special = ordered_json::object();
  special[bos] = {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}};
  return {{"type", "TemplateProcessing"},
          {"single", {sp, seq}},
          {"pair", {sp, seq, {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
          {"special_tokens", special}};
}

ordered_json added_token(int id, const std::string& content) {
  return {{"id", id},         {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},  {"normalized", false}, {"special", true}};
}

// The byte-to-character map of byte-level BPE applied to every byte of s.
std::string map_bytes(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += byte_char(c);
  return out;
}

ordered_json llama_json(const std::vector<std::pair<std::string, std::string>>& raw_merges) {
  ordered_json vocab = ordered_json::object();
  int next_id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_char(static_cast<unsigned char>(b))] = next_id++;
  ordered_json merges = ordered_json::array();
  for (const auto& [l, r] : raw_merges) {
    const std::string left = map_bytes(l), right = map_bytes(r);
    merges.push_back({left, right});
    if (!vocab.contains(left + right)) vocab[left + right] = next_id++;
  }
  ordered_json added = ordered_json::array();
  for (const char* s : {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}) {
    added.push_back(added_token(next_id++, s));
  }
  const ordered_json bos_template = template_processing("<|begin_of_text|>", static_cast<int>(vocab.size()));
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", kLlama3Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
          {"post_processor",
           {{"type", "Sequence"},
            {"processors",
             {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}},
              bos_template}}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", true},
            {"vocab", vocab}, {"merges", merges}}}};
}

ordered_json tiny_mistral() {
  const std::string space = "\xE2\x96\x81";  // U+2581 "▁"
  ordered_json vocab = ordered_json::object();
  int next_id = 0;
  for (const char* s : {"<unk>", "<s>", "</s>"}) vocab[s] = next_id++;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = next_id++;
  }
  // Single characters: the space marker, lower-case letters, digits, some punctuation.
  vocab[space] = next_id++;
  for (char c = 'a'; c <= 'z'; ++c) vocab[std::string(1, c)] = next_id++;
  for (char c = '0'; c <= '9'; ++c) vocab[std::string(1, c)] = next_id++;
  for (const char* s : {".", ",", "/", ":", "[", "]", "I", "N", "S", "T"}) vocab[s] = next_id++;
  ordered_json merges = ordered_json::array();
  for (const auto& [l, r] : kTinyMerges) {
    const std::string left = replace_space(l, space), right = replace_space(r, space);
    merges.push_back(left + " " + right);  // the older "a b" format, as Mistral's files have
    if (!vocab.contains(left + right)) vocab[left + right] = next_id++;
  }
  ordered_json added = ordered_json::array();
  for (const char* s : {"<unk>", "<s>", "</s>"}) added.push_back(added_token(vocab[s].get<int>(), s));
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", space}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}}}}}},
          {"pre_tokenizer", nullptr},
          {"post_processor", template_processing("<s>", 1)},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"vocab", vocab},
            {"merges", merges}}}};
}

ordered_json tiny_llama() {
  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& [l, r] : kTinyMerges) merges.emplace_back(l, r);
  return llama_json(merges);
}

}  // namespace

std::string byte_level_bpe_json(const std::vector<std::pair<std::string, std::string>>& merges) {
  return llama_json(merges).dump(1);
}

std::string tiny_tokenizer_json(const std::string& family) {
  if (family == "llama") return tiny_llama().dump(1);
  if (family == "mistral") return tiny_mistral().dump(1);
  throw Error("write_tiny_tokenizer: unknown family '" + family + "'", "use llama or mistral");
}

void write_tiny_tokenizer(const std::string& path, const std::string& family) {
  const std::string text = tiny_tokenizer_json(family);
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write '" + path + "'", "does the directory exist?");
  out << text << "\n";
  if (!out) throw Error("write to '" + path + "' failed");
}

}  // namespace sensecf::llm
