// Private to the llm module: the BPE model of a tokenizer.json — vocabulary,
// merge ranks, and the merge loop that turns one pre-token ("word") into ids.
// It knows nothing about JSON, normalizers or pre-tokenizers: tokenizer.cpp
// hands it words in the model's alphabet (raw bytes for byte-level tokenizers,
// whose vocabulary is un-mapped from the GPT-2 byte→unicode alphabet on load;
// UTF-8 text for sentencepiece-style ones).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sensecf::llm {

// An open-addressing hash map from strings to ids: lookups by string_view
// without allocating (std::unordered_map<std::string,...> cannot in C++17).
class StringIdMap {
 public:
  void reserve(std::size_t n);
  // Inserts (or overwrites) key -> id.
  void set(std::string_view key, int id);
  // The id of `key`, or -1.
  int find(std::string_view key) const;
  std::size_t size() const { return n_used_; }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t offset = 0;  // into chars_
    std::uint32_t length = 0;
    int id = -1;               // -1: empty
  };
  void grow();
  std::vector<Slot> slots_;
  std::string chars_;
  std::size_t n_used_ = 0;
};

std::uint64_t hash_bytes(std::string_view s);

struct BpeOptions {
  bool ignore_merges = false;  // a word that is itself a vocabulary entry is emitted as is
  bool byte_fallback = false;  // unknown pieces become <0xNN> byte tokens
  bool fuse_unk = false;       // consecutive unknown pieces become one unk
  int unk_id = -1;             // -1: no unk token (unknown pieces are an error)
  bool byte_units = false;     // initial symbols are bytes (byte-level) instead of UTF-8 code points
};

class BpeModel {
 public:
  BpeModel() = default;
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  BpeOptions options;
  // Token text (in the model's alphabet) -> id. Filled by the loader.
  StringIdMap vocab;
  // Byte fallback ids of <0x00>..<0xFF> (-1 where absent).
  int byte_token[256];

  // Adds merge number `rank` (left + right -> merged); ids must exist.
  void add_merge(int left, int right, int merged, int rank);
  std::size_t n_merges() const { return n_merges_; }

  // Appends the ids of one word. Throws sensecf::Error if a piece is unknown and
  // there is neither byte fallback nor an unk token.
  void encode_word(std::string_view word, std::vector<int>& out) const;

  // Drops the word cache (tests, benchmarks).
  void clear_cache() const;

 private:
  struct Merge {
    std::uint64_t key = ~std::uint64_t{0};  // (left << 32) | right; ~0: empty
    int rank = 0;
    int merged = 0;
  };
  const Merge* find_merge(int left, int right) const;
  void merge_word(std::string_view word, std::vector<int>& out) const;

  std::vector<Merge> merges_;  // open addressing, power-of-two size
  std::size_t n_merges_ = 0;

  // Word -> ids cache (words shorter than kMaxCachedWord bytes).
  static constexpr std::size_t kMaxCachedWord = 64;
  static constexpr std::size_t kMaxCacheEntries = 1 << 18;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace sensecf::llm
