// Private to the llm module: the regex pre-tokenizers of byte-level BPE
// tokenizers, as hand-written scanners instead of a regex engine. Each scanner
// implements one fixed pattern exactly (leftmost alternative wins, greedy
// quantifiers with the backtracking the pattern implies); other patterns are
// refused when the tokenizer.json is loaded. Character classes are those of the
// JavaScript reference encoder (unicode_tables.cpp); see docs/tokenizers.md for
// the few code points (U+FEFF, U+0085) where engines disagree.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sensecf::llm {

enum class SplitPattern {
  // Llama-3 / tiktoken cl100k:
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // GPT-2 (ByteLevel pre-tokenizer with use_regex = true):
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
};

// The scanner for a pattern string as written in tokenizer.json, if we have one.
std::optional<SplitPattern> recognize_split_pattern(const std::string& regex);
extern const char* const kLlama3Pattern;
extern const char* const kGpt2Pattern;

// Appends the matches of `pattern` in `text` to `out`, in order. Both patterns
// match every character, so the matches tile `text` (Split behavior Isolated
// then keeps exactly these pieces).
void split_by_pattern(SplitPattern pattern, std::string_view text, std::vector<std::string_view>& out);

}  // namespace sensecf::llm
