// UTF-8 helpers and the character-class lookup for the llm module (see unicode.h).
#include "unicode.h"

#include <cstdint>
#include <algorithm>
#include <array>

namespace sensecf::llm::unicode {
namespace {

bool in_ranges(const CodePointRange* ranges, std::size_t n, std::uint32_t cp) {
  const CodePointRange* end = ranges + n;
  const CodePointRange* it =
      std::upper_bound(ranges, end, cp, [](std::uint32_t v, const CodePointRange& r) { return v < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

// Classes of the code points below 0x800 (ASCII, Latin, Greek, Cyrillic, Hebrew,
// Arabic...), looked up without a search.
std::array<std::uint8_t, 0x800> make_low_table() {
  std::array<std::uint8_t, 0x800> t{};
  for (std::uint32_t cp = 0; cp < t.size(); ++cp) {
    std::uint8_t c = 0;
    if (in_ranges(kLetterRanges, kLetterRangeCount, cp)) c |= kLetter;
    if (in_ranges(kNumberRanges, kNumberRangeCount, cp)) c |= kNumber;
    if (in_ranges(kSpaceRanges, kSpaceRangeCount, cp)) c |= kSpace;
    t[cp] = c;
  }
  return t;
}

}  // namespace

std::uint8_t classify(std::uint32_t cp) {
  static const std::array<std::uint8_t, 0x800> low = make_low_table();
  if (cp < low.size()) return low[cp];
  if (in_ranges(kLetterRanges, kLetterRangeCount, cp)) return kLetter;
  if (in_ranges(kNumberRanges, kNumberRangeCount, cp)) return kNumber;
  if (in_ranges(kSpaceRanges, kSpaceRangeCount, cp)) return kSpace;
  return 0;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 0;
    const std::uint32_t cp = decode_utf8(s, i, len);
    if (cp == 0xFFFD && !(len == 3 && s.substr(i, 3) == "\xEF\xBF\xBD")) return false;
    i += len;
  }
  return true;
}

}  // namespace sensecf::llm::unicode
