// The BPE merge loop (see bpe.h). Reference semantics: huggingface/tokenizers
// models/bpe (word.rs merge_all) and transformers.js BPE.bpe: repeatedly apply
// the lowest-ranked merge present in the word, leftmost first among equal ranks.
// Implementation: symbols in an array-backed doubly linked list, candidate pairs
// in a binary heap keyed by (rank, position); stale heap entries are skipped.
#include "bpe.h"

#include <cstdint>
#include <algorithm>
#include <queue>

#include "sensecf/core/error.h"
#include "unicode.h"

namespace sensecf::llm {

// ---- StringIdMap ----------------------------------------------------------

std::uint64_t hash_bytes(std::string_view s) {
  // FNV-1a over 8-byte words, then a final mix: fast for short keys.
  std::uint64_t h = 1469598103934665603ull ^ s.size();
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w = 0;
    for (int k = 0; k < 8; ++k) w |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[i + k])) << (8 * k);
    h = (h ^ w) * 1099511628211ull;
    h ^= h >> 29;
  }
  for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

void StringIdMap::reserve(std::size_t n) {
  std::size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{});
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    std::size_t j = s.hash & (cap - 1);
    while (slots_[j].id >= 0) j = (j + 1) & (cap - 1);
    slots_[j] = s;
  }
}

void StringIdMap::grow() { reserve(slots_.empty() ? 8 : slots_.size()); }

void StringIdMap::set(std::string_view key, int id) {
  if (2 * (n_used_ + 1) > slots_.size()) grow();
  const std::uint64_t h = hash_bytes(key);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t j = h & mask;; j = (j + 1) & mask) {
    Slot& s = slots_[j];
    if (s.id < 0) {
      s.hash = h;
      s.offset = static_cast<std::uint32_t>(chars_.size());
      s.length = static_cast<std::uint32_t>(key.size());
      s.id = id;
      chars_.append(key);
      ++n_used_;
      return;
    }
    if (s.hash == h && std::string_view(chars_.data() + s.offset, s.length) == key) {
      s.id = id;
      return;
    }
  }
}

int StringIdMap::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  const std::uint64_t h = hash_bytes(key);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t j = h & mask;; j = (j + 1) & mask) {
    const Slot& s = slots_[j];
    if (s.id < 0) return -1;
    if (s.hash == h && s.length == key.size() && std::string_view(chars_.data() + s.offset, s.length) == key) {
      return s.id;
    }
  }
}

// ---- merges -----------------------------------------------------------------

namespace {
std::uint64_t pair_key(int left, int right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}
std::uint64_t mix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}
}  // namespace

void BpeModel::add_merge(int left, int right, int merged, int rank) {
  if (2 * (n_merges_ + 1) > merges_.size()) {
    std::vector<Merge> old;
    old.swap(merges_);
    merges_.assign(old.empty() ? 1024 : 2 * old.size(), Merge{});
    n_merges_ = 0;
    for (const Merge& m : old) {
      if (m.key != ~std::uint64_t{0}) add_merge(static_cast<int>(m.key >> 32), static_cast<int>(m.key & 0xffffffffu),
                                                m.merged, m.rank);
    }
  }
  const std::uint64_t key = pair_key(left, right);
  const std::size_t mask = merges_.size() - 1;
  for (std::size_t j = mix(key) & mask;; j = (j + 1) & mask) {
    Merge& m = merges_[j];
    if (m.key == key) return;  // a repeated merge keeps its first (lowest) rank, as HF does
    if (m.key == ~std::uint64_t{0}) {
      m = Merge{key, rank, merged};
      ++n_merges_;
      return;
    }
  }
}

const BpeModel::Merge* BpeModel::find_merge(int left, int right) const {
  if (merges_.empty() || left < 0 || right < 0) return nullptr;
  const std::uint64_t key = pair_key(left, right);
  const std::size_t mask = merges_.size() - 1;
  for (std::size_t j = mix(key) & mask;; j = (j + 1) & mask) {
    const Merge& m = merges_[j];
    if (m.key == key) return &m;
    if (m.key == ~std::uint64_t{0}) return nullptr;
  }
}

// ---- the merge loop ----------------------------------------------------------

void BpeModel::merge_word(std::string_view word, std::vector<int>& out) const {
  struct Symbol {
    int id;             // -1: a unit that is not in the vocabulary
    std::uint32_t start, length;  // bytes of `word`
    int prev, next;     // indices into symbols, -1 at the ends
  };
  struct Candidate {
    int rank;
    int left;           // index of the left symbol (its position breaks ties: leftmost first)
    int left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };

  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (std::size_t i = 0; i < word.size();) {
    std::size_t len = 1;
    if (!options.byte_units) unicode::decode_utf8(word, i, len);
    const int n = static_cast<int>(symbols.size());
    symbols.push_back({vocab.find(word.substr(i, len)), static_cast<std::uint32_t>(i),
                       static_cast<std::uint32_t>(len), n - 1, -1});
    if (n > 0) symbols[n - 1].next = n;
    i += len;
  }

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int left) {
    const int right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* m = find_merge(symbols[left].id, symbols[right].id)) {
      queue.push({m->rank, left, symbols[left].id, symbols[right].id});
    }
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    if (left.length == 0 || left.id != c.left_id || left.next < 0) continue;  // merged away or changed
    Symbol& right = symbols[left.next];
    if (right.id != c.right_id) continue;
    left.id = find_merge(c.left_id, c.right_id)->merged;
    left.length += right.length;
    right.length = 0;  // dead
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    if (left.prev >= 0) consider(left.prev);
    consider(c.left);
  }

  bool last_was_unk = false;
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out.push_back(s.id);
      last_was_unk = s.id == options.unk_id;
      continue;
    }
    const std::string_view piece = word.substr(s.start, s.length);
    if (options.byte_fallback) {
      bool all = true;
      for (char b : piece) all = all && byte_token[static_cast<unsigned char>(b)] >= 0;
      if (all) {
        for (char b : piece) out.push_back(byte_token[static_cast<unsigned char>(b)]);
        last_was_unk = false;
        continue;
      }
    }
    if (options.unk_id < 0) {
      throw Error("tokenizer: the piece '" + std::string(piece) +
                      "' is not in the vocabulary and the model has neither byte_fallback nor an unk_token",
                  "this tokenizer.json cannot encode this text; is its vocabulary complete?");
    }
    if (!(options.fuse_unk && last_was_unk)) out.push_back(options.unk_id);
    last_was_unk = true;
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int>& out) const {
  if (word.empty()) return;
  if (options.ignore_merges) {
    const int id = vocab.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() < kMaxCachedWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
  }
}

void BpeModel::clear_cache() const {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.clear();
}

}  // namespace sensecf::llm
