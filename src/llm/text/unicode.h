// Private to the llm module: UTF-8 decoding and the three character classes the
// Llama-3 pre-tokenizer regex needs (\p{L}, \p{N}, \s). The tables come from
// unicode_tables.cpp, generated from the JavaScript reference engine so both
// agree code point for code point. Not a general Unicode library: no
// normalisation, no case mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sensecf::llm::unicode {

struct CodePointRange {
  std::uint32_t first;
  std::uint32_t last;
};

extern const CodePointRange kLetterRanges[];
extern const std::size_t kLetterRangeCount;
extern const CodePointRange kNumberRanges[];
extern const std::size_t kNumberRangeCount;
extern const CodePointRange kSpaceRanges[];
extern const std::size_t kSpaceRangeCount;

// Character class bits.
enum : std::uint8_t { kLetter = 1, kNumber = 2, kSpace = 4 };

// Class bits of a code point (0 for punctuation, symbols, controls, ...).
std::uint8_t classify(std::uint32_t cp);

// Decodes the code point at s[i]; sets `len` to its byte length (1..4). An
// invalid or truncated sequence decodes as one byte with code point 0xFFFD
// (which belongs to none of the classes above), so every byte is consumed.
inline std::uint32_t decode_utf8(std::string_view s, std::size_t i, std::size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    len = 1;
    return b0;
  }
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  if (b0 >= 0xC2 && b0 < 0xE0 && cont(1)) {
    len = 2;
    return ((b0 & 0x1Fu) << 6) | byte(1);
  }
  if (b0 >= 0xE0 && b0 < 0xF0 && cont(1) && cont(2)) {
    const std::uint32_t cp = ((b0 & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
      len = 3;
      return cp;
    }
  } else if (b0 >= 0xF0 && b0 < 0xF5 && cont(1) && cont(2) && cont(3)) {
    const std::uint32_t cp = ((b0 & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
    if (cp >= 0x10000 && cp <= 0x10FFFF) {
      len = 4;
      return cp;
    }
  }
  len = 1;
  return 0xFFFD;
}

// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, std::uint32_t cp);

// True if `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s);

}  // namespace sensecf::llm::unicode
