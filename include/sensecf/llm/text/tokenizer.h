// llm::Tokenizer — a Hugging Face tokenizer.json, BPE models only: byte-level BPE
// (Llama-3/3.1: Split regex + ByteLevel) and sentencepiece-style BPE
// (Llama-2/Mistral/BioMistral: Prepend/Replace normalizer or Metaspace, byte
// fallback <0xNN>). Encodes text to ids and decodes ids to text exactly as
// huggingface/tokenizers does for these files (checked against the
// transformers.js reference by tests/golden/tokenizer/).
//
// Deliberately not here: Unigram/WordPiece/WordLevel models, Unicode
// normalizers (NFC, NFKC, Lowercase...), arbitrary Split regexes (only the
// Llama-3 and GPT-2 patterns, as hand-written scanners), offsets, truncation,
// padding, pairs. Unsupported parts of a file are refused on load, naming them.
// No LibTorch here.
//
// Thread safety: a loaded Tokenizer is immutable apart from an internal,
// mutex-guarded word cache; encode/decode may be called from several threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sensecf::llm {

struct EncodeOptions {
  // Apply the post-processor's template (BOS for Llama/Mistral).
  bool add_special = false;
  // Recognise special added tokens ("<|eot_id|>", "</s>") written in the text.
  // Off by default: plain user text never turns into special ids. Chat templates
  // build their markers from ids instead (chat.h). Non-special added tokens are
  // always recognised, as in Hugging Face.
  bool parse_special = false;
};

class Tokenizer {
 public:
  // Reads and validates a tokenizer.json. Throws sensecf::Error naming the file
  // and the JSON path of the problem (e.g. "model.merges[12]").
  static Tokenizer load(const std::string& path);
  // The same from JSON text; `origin` names it in error messages.
  static Tokenizer from_json(std::string_view json_text, const std::string& origin = "<tokenizer.json>");

  std::vector<int> encode(std::string_view text, const EncodeOptions& options) const;
  std::vector<int> encode(std::string_view text, bool add_special = false) const {
    return encode(text, EncodeOptions{add_special, false});
  }
  // Text of the ids (UTF-8; invalid byte sequences become U+FFFD). Ids out of
  // range throw sensecf::Error.
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const;

  // The id of a token as written in the vocabulary or added_tokens (for
  // byte-level tokenizers in the mapped alphabet: "Ġthe").
  std::optional<int> token_id(std::string_view token) const;
  // The token text of an id ("" for ids without a token).
  const std::string& token(int id) const;
  // The raw bytes a token contributes to the text when it follows other text:
  // byte-level BPE un-maps the alphabet ("Ġthe" -> " the"); sentencepiece-style
  // BPE turns the metaspace into a space ("▁the" -> " the") and a byte-fallback
  // token into its byte ("<0x0A>" -> "\n"); an added token (special or not) is
  // its content. Unlike decode(), no leading space is stripped and bytes are
  // not made valid UTF-8 (a byte token may be half a character). "" for ids
  // without a token. Computed once at load (constrained decoding, llmcf/grammar.h).
  const std::string& token_bytes(int id) const;
  // Largest id + 1 over the vocabulary and the added tokens.
  int vocab_size() const;
  bool is_special(int id) const;

  // BOS: the first special token of the post-processor's template, if any.
  std::optional<int> bos_id() const;
  // End-of-sequence / end-of-turn ids present among the added tokens:
  // "</s>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>".
  std::vector<int> eos_ids() const;

  // One line for logs: "byte-level BPE, 128256 tokens, 280147 merges, 256 added".
  std::string describe() const;

  // Drops the internal word cache (benchmarks).
  void clear_cache() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Writes a small, valid tokenizer.json for tests and `sensecf lm init-tiny`:
//   "llama":   byte-level BPE (Llama-3 regex), the 256 byte tokens, a few dozen
//              merges, then <|begin_of_text|>, <|end_of_text|>,
//              <|start_header_id|>, <|end_header_id|>, <|eot_id|> as specials.
//   "mistral": sentencepiece-style BPE: <unk>, <s>, </s>, <0x00>..<0xFF>, a few
//              dozen pieces and merges, Prepend/Replace normalizer.
// Vocabulary sizes stay below 512. Throws sensecf::Error for another family.
void write_tiny_tokenizer(const std::string& path, const std::string& family);
// The same as JSON text.
std::string tiny_tokenizer_json(const std::string& family);

}  // namespace sensecf::llm
