// Hand-written scanners for the Llama-3 and GPT-2 pre-tokenizer regexes (see
// pretokenize.h). Each alternative of the pattern is one block below, in the
// pattern's order; a block either returns the end of its match or falls through
// to the next alternative, as a backtracking regex engine would.
#include <cstdint>
#include "pretokenize.h"

#include "unicode.h"

namespace sensecf::llm {

const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::optional<SplitPattern> recognize_split_pattern(const std::string& regex) {
  if (regex == kLlama3Pattern) return SplitPattern::kLlama3;
  if (regex == kGpt2Pattern) return SplitPattern::kGpt2;
  return std::nullopt;
}

namespace {

// A cursor over UTF-8 text: code point and class at a byte position.
struct Text {
  std::string_view s;

  bool at_end(std::size_t i) const { return i >= s.size(); }
  // Code point at i and the position after it.
  std::uint32_t at(std::size_t i, std::size_t& next) const {
    std::size_t len = 1;
    const std::uint32_t cp = unicode::decode_utf8(s, i, len);
    next = i + len;
    return cp;
  }
  std::uint8_t cls(std::uint32_t cp) const { return unicode::classify(cp); }
  // Position after the longest run of code points with any of `mask`'s class bits.
  std::size_t skip_class(std::size_t i, std::uint8_t mask) const {
    while (!at_end(i)) {
      std::size_t next;
      const std::uint32_t cp = at(i, next);
      if ((cls(cp) & mask) == 0) break;
      i = next;
    }
    return i;
  }
  // Position after the longest run of code points that are none of \s, \p{L}, \p{N}.
  std::size_t skip_other(std::size_t i) const {
    while (!at_end(i)) {
      std::size_t next;
      const std::uint32_t cp = at(i, next);
      if (cls(cp) != 0) break;
      i = next;
    }
    return i;
  }
  std::size_t skip_cr_lf(std::size_t i) const {
    while (!at_end(i) && (s[i] == '\r' || s[i] == '\n')) ++i;
    return i;
  }
  char lower_ascii(std::size_t i) const {
    if (at_end(i)) return 0;
    const char c = s[i];
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  char exact(std::size_t i) const { return at_end(i) ? 0 : s[i]; }
};

// 's 't 're 've 'm 'll 'd after an apostrophe at i; `fold` makes them
// case-insensitive (ASCII only, as the reference's rewrite of (?i:...) does).
std::size_t match_contraction(const Text& t, std::size_t i, bool fold) {
  auto ch = [&](std::size_t k) { return fold ? t.lower_ascii(k) : t.exact(k); };
  const char a = ch(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  const char b = ch(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return i;
}

// \s+(?!\S)|\s+ starting at i (a whitespace code point); `run_end` ends the
// whitespace run, `last_start` is where its last code point starts.
std::size_t match_trailing_space(const Text& t, std::size_t i, std::size_t run_end, std::size_t last_start) {
  if (t.at_end(run_end)) return run_end;     // \s+(?!\S) at the end of the text
  if (last_start > i) return last_start;     // leave one space for the next word
  return run_end;                            // \s+
}

std::size_t match_llama3(const Text& t, std::size_t i) {
  std::size_t next;
  const std::uint32_t cp = t.at(i, next);
  const std::uint8_t c = t.cls(cp);

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (cp == '\'') {
    const std::size_t end = match_contraction(t, i, /*fold=*/true);
    if (end != i) return end;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c & unicode::kLetter) return t.skip_class(next, unicode::kLetter);
  if (!(c & unicode::kNumber) && cp != '\r' && cp != '\n' && !t.at_end(next)) {
    std::size_t after;
    const std::uint32_t cp2 = t.at(next, after);
    if (t.cls(cp2) & unicode::kLetter) return t.skip_class(after, unicode::kLetter);
  }
  // \p{N}{1,3}
  if (c & unicode::kNumber) {
    std::size_t end = next;
    for (int k = 1; k < 3 && !t.at_end(end); ++k) {
      std::size_t after;
      if (!(t.cls(t.at(end, after)) & unicode::kNumber)) break;
      end = after;
    }
    return end;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    std::size_t start = i;
    if (cp == ' ') start = next;
    const std::size_t end = t.skip_other(start);
    if (end != start) return t.skip_cr_lf(end);
  }
  // Only whitespace is left: \s*[\r\n]+|\s+(?!\S)|\s+
  std::size_t run_end = i;
  std::size_t last_start = i;
  std::size_t last_newline_end = std::string_view::npos;
  while (!t.at_end(run_end)) {
    std::size_t after;
    const std::uint32_t w = t.at(run_end, after);
    if (!(t.cls(w) & unicode::kSpace)) break;
    if (w == '\r' || w == '\n') last_newline_end = after;
    last_start = run_end;
    run_end = after;
  }
  if (last_newline_end != std::string_view::npos) return last_newline_end;  // \s*[\r\n]+
  return match_trailing_space(t, i, run_end, last_start);
}

std::size_t match_gpt2(const Text& t, std::size_t i) {
  std::size_t next;
  const std::uint32_t cp = t.at(i, next);
  // 's|'t|'re|'ve|'m|'ll|'d
  if (cp == '\'') {
    const std::size_t end = match_contraction(t, i, /*fold=*/false);
    if (end != i) return end;
  }
  //  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+
  for (std::size_t start : {cp == ' ' ? next : i, i}) {
    if (t.at_end(start)) continue;
    std::size_t after;
    const std::uint8_t c = t.cls(t.at(start, after));
    if (c & unicode::kLetter) return t.skip_class(after, unicode::kLetter);
    if (c & unicode::kNumber) return t.skip_class(after, unicode::kNumber);
    if (c == 0) return t.skip_other(after);
  }
  // \s+(?!\S)|\s+
  std::size_t run_end = i;
  std::size_t last_start = i;
  while (!t.at_end(run_end)) {
    std::size_t after;
    if (!(t.cls(t.at(run_end, after)) & unicode::kSpace)) break;
    last_start = run_end;
    run_end = after;
  }
  return match_trailing_space(t, i, run_end, last_start);
}

}  // namespace

void split_by_pattern(SplitPattern pattern, std::string_view text, std::vector<std::string_view>& out) {
  const Text t{text};
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = pattern == SplitPattern::kLlama3 ? match_llama3(t, i) : match_gpt2(t, i);
    if (end <= i) {  // cannot happen (every code point matches some alternative); stay safe
      std::size_t len;
      unicode::decode_utf8(text, i, len);
      end = i + len;
    }
    out.push_back(text.substr(i, end - i));
    i = end;
  }
}

}  // namespace sensecf::llm
