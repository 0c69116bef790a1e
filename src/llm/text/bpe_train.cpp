// Byte-level BPE training (see llm/text/bpe_train.h).
#include "sensecf/llm/text/bpe_train.h"

#include <map>
#include <string_view>
#include <unordered_map>

#include "pretokenize.h"
#include "sensecf/core/error.h"

namespace sensecf::llm {

std::vector<std::pair<std::string, std::string>> train_bpe_merges(const std::vector<std::string>& texts,
                                                                  int max_merges) {
  if (max_merges < 0) throw Error("train_bpe_merges: max_merges must be >= 0");
  // The corpus as distinct words (pre-tokenizer pieces) with counts.
  std::map<std::string, long> counts;
  std::vector<std::string_view> pieces;
  for (const auto& text : texts) {
    pieces.clear();
    split_by_pattern(SplitPattern::kLlama3, text, pieces);
    for (auto p : pieces) ++counts[std::string(p)];
  }
  // Symbols by id; each word a sequence of symbol ids, starting with its bytes.
  std::vector<std::string> symbols;
  std::map<std::string, int> symbol_id;
  auto intern = [&](const std::string& s) {
    const auto [it, added] = symbol_id.emplace(s, static_cast<int>(symbols.size()));
    if (added) symbols.push_back(s);
    return it->second;
  };
  struct Word {
    std::vector<int> parts;
    long count;
  };
  std::vector<Word> words;
  for (const auto& [w, n] : counts) {
    Word word{{}, n};
    for (char c : w) word.parts.push_back(intern(std::string(1, c)));
    words.push_back(std::move(word));
  }

  std::vector<std::pair<std::string, std::string>> merges;
  std::unordered_map<long long, long> pairs;
  for (int round = 0; round < max_merges; ++round) {
    pairs.clear();
    for (const auto& w : words)
      for (std::size_t i = 0; i + 1 < w.parts.size(); ++i)
        pairs[static_cast<long long>(w.parts[i]) << 32 | static_cast<unsigned>(w.parts[i + 1])] += w.count;
    long best_count = 1;
    int best_left = -1, best_right = -1;
    for (const auto& [key, n] : pairs) {
      const int l = static_cast<int>(key >> 32), r = static_cast<int>(key & 0xffffffff);
      const bool better = n > best_count ||
                          (n == best_count && best_left >= 0 &&
                           std::make_pair(symbols[l], symbols[r]) <
                               std::make_pair(symbols[best_left], symbols[best_right]));
      if (better) {
        best_count = n;
        best_left = l;
        best_right = r;
      }
    }
    if (best_left < 0) break;  // no pair occurs twice
    const std::string left = symbols[best_left], right = symbols[best_right];
    const int merged = intern(left + right);
    merges.emplace_back(left, right);
    for (auto& w : words) {
      std::vector<int> out;
      out.reserve(w.parts.size());
      for (std::size_t i = 0; i < w.parts.size(); ++i) {
        if (i + 1 < w.parts.size() && w.parts[i] == best_left && w.parts[i + 1] == best_right) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(w.parts[i]);
        }
      }
      w.parts = std::move(out);
    }
  }
  return merges;
}

}  // namespace sensecf::llm
