// Constrained decoding of SenseCF answers: a token mask, built from the schema,
// that keeps every generated answer well-formed (the format of answer.h):
//
//   - optional leading whitespace (at most kMaxLeadingSpace spaces or newlines;
//     sentencepiece models often start with "▁<"), then "<new>\n";
//   - every feature exactly once, in schema order, as "- <label>: <value>\n";
//   - immutable features: the factual value, as format_value writes it;
//   - mutable categorical features: one of the allowed categories (all
//     categories when `allowed` is empty);
//   - mutable continuous features: a canonical number (no leading zeros but
//     "0" and "0.xx", at most kDecimals decimals, no trailing decimal zeros,
//     no "-0", '-' only for negative values) whose value lies in the permitted
//     range rounded to the decimal grid the way round_value rounds:
//     [round(lower), round(upper)]. A value is allowed iff format_value writes
//     it for some x in [lower, upper];
//   - then "</new>", after which only the end ids (EOS / end of turn).
//
// Three pieces:
//   TokenVocabulary  built once per tokenizer: the bytes of every non-special
//                    token (Tokenizer::token_bytes) in a byte trie.
//   AnswerGrammar    one query's answer as a list of segments (fixed text or
//                    alternatives, numbers in a range), compiled to a small
//                    deterministic automaton over bytes.
//   GrammarMatcher   walks one sequence's tokens: allowed_tokens() walks the
//                    vocabulary trie and the automaton together, pruning every
//                    subtree whose first byte the automaton refuses, so a token
//                    is allowed iff the text with it is still a prefix of some
//                    valid answer. Tokens spanning several segments ("5\n",
//                    ".\n", " 12") are handled byte by byte.
//
// Cost with the 128k Llama-3.1 vocabulary: ~0.5 us per generated token on
// average, ~5 us for the slowest (a number's first token); building the trie
// ~60 ms (bench_grammar, docs/constrained-decoding.md).
//
// Not here: logits, torch (the generator turns allowed ids into a mask), the
// prompt (prompt.h), parsing (parse.h). Torch-free. A TokenVocabulary is
// immutable and shared between threads; a GrammarMatcher belongs to one
// sequence.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf::llm {
class Tokenizer;
}

namespace sensecf::llmcf {

inline constexpr int kMaxLeadingSpace = 4;

// The byte trie of a tokenizer's vocabulary. Nodes are numbered so that the
// children of a node are contiguous and sorted by byte; node 0 is the root.
class TokenVocabulary {
 public:
  // Every token except the special ones and those without bytes.
  static std::shared_ptr<const TokenVocabulary> build(const llm::Tokenizer& tokenizer);
  // The same from explicit token bytes (tests); ids in `excluded` are left out.
  static std::shared_ptr<const TokenVocabulary> build(const std::vector<std::string>& token_bytes,
                                                      const std::vector<bool>& excluded);

  int vocab_size() const { return static_cast<int>(bytes_begin_.size()) - 1; }
  // The bytes of an id ("" for specials and ids outside the vocabulary).
  std::string_view bytes(int id) const;
  bool in_trie(int id) const { return !bytes(id).empty(); }
  std::size_t n_nodes() const { return first_child_.size(); }

 private:
  friend class GrammarMatcher;
  // Per node (parallel arrays, n_nodes entries).
  std::vector<std::uint8_t> byte_;          // the byte of the edge into the node
  std::vector<std::uint32_t> first_child_;  // children: [first_child, first_child + n_children)
  std::vector<std::uint16_t> n_children_;
  std::vector<std::uint32_t> first_id_;     // ids whose bytes end here: ids_[first_id, first_id + n_ids)
  std::vector<std::uint16_t> n_ids_;
  std::vector<std::int32_t> wide_;          // index into wide_nodes_, or -1 (few children: scan them)
  // Nodes with many children: which bytes have a child, and the rank prefix.
  struct WideNode {
    std::uint64_t has[4];
    std::uint16_t rank[4];  // children with a byte below 64 * w
  };
  std::vector<WideNode> wide_nodes_;
  std::vector<int> ids_;
  // Token bytes by id: text_[bytes_begin_[id], bytes_begin_[id + 1]).
  std::string text_;
  std::vector<std::uint32_t> bytes_begin_;
};

// One query's answer format as a list of segments.
class AnswerGrammar {
 public:
  struct Segment {
    enum class Kind { kLeadingSpace, kText, kNumber };
    Kind kind = Kind::kText;
    // kText: the alternatives (one for fixed text). Each is non-empty; when one
    // is a prefix of another, the next segment must not start with the byte
    // that extends it (the automaton stays deterministic).
    std::vector<std::string> texts;
    // kNumber: the permitted values in units of 10^-kDecimals, inclusive.
    std::int64_t lower = 0, upper = 0;
    // The schema feature of a value segment; -1 for the format's fixed text.
    int feature = -1;
  };

  // Validates (sensecf::Error naming the segment) and compiles the segments. A
  // number must be followed by text that starts with neither a digit, '.' nor
  // '-'; kLeadingSpace may only come first.
  explicit AnswerGrammar(std::vector<Segment> segments);

  const std::vector<Segment>& segments() const { return segments_; }
  // One line per segment, for logs and test failures.
  std::string describe() const;

 private:
  friend class GrammarMatcher;
  // The text segments as one trie of byte edges; node k's edges are
  // edges_[edge_begin_[k], edge_begin_[k + 1]).
  struct Edge {
    std::uint8_t byte;
    std::int32_t target;
  };
  std::vector<Segment> segments_;
  std::vector<std::int32_t> root_;  // per segment: its trie root (kText), else -1
  std::vector<std::uint32_t> edge_begin_;
  std::vector<Edge> edges_;
  std::vector<bool> terminal_;  // per text node: an alternative ends here
  // Bytes as 4 x 64 bits. first_bytes_[k]: the bytes that may start segment k
  // (k = n_segments: none); segment_next_[k]: the bytes that may follow inside
  // or after a kNumber / kLeadingSpace segment k (a superset); node_next_[n]:
  // the bytes that may follow text node n (its edges, and the next segment's
  // first bytes when an alternative ends there).
  std::vector<std::array<std::uint64_t, 4>> first_bytes_;
  std::vector<std::array<std::uint64_t, 4>> segment_next_;
  std::vector<std::array<std::uint64_t, 4>> node_next_;
};

// The grammar of one answer for the row `factual` (schema.size() values, the
// codes of categorical features as in data::Matrix). Throws sensecf::Error for
// a continuous range that is not finite, inverted or beyond +-1e12, or a
// category containing a newline.
AnswerGrammar answer_grammar(const data::Schema& schema, const double* factual);

// Walks one sequence: the text generated so far is a prefix of a valid answer.
class GrammarMatcher {
 public:
  // `end_ids`: what may follow "</new>" (Tokenizer::eos_ids()).
  GrammarMatcher(AnswerGrammar grammar, std::shared_ptr<const TokenVocabulary> vocabulary, std::vector<int> end_ids);

  // Replaces `out` with the ids that keep the text a prefix of a valid answer,
  // in trie order (not sorted); once the answer is complete, the end ids.
  void allowed_tokens(std::vector<int>& out) const;
  std::vector<int> allowed_tokens() const;
  // Appends the token's bytes; false (and no change) for a token that is not
  // allowed. An end id is accepted once complete() (and changes nothing).
  bool accept(int token);
  // "</new>" has been written.
  bool complete() const;
  // The bytes accepted so far.
  const std::string& text() const { return text_; }
  const AnswerGrammar& grammar() const { return *grammar_; }

 private:
  // The automaton's position.
  struct State {
    std::int32_t segment = 0;
    std::int32_t node = 0;     // kText: the trie node; kLeadingSpace: bytes so far; kNumber: the phase
    std::int64_t integer = 0;  // kNumber: the integer part written so far
    std::int8_t decimals = 0;  // kNumber: the decimal digits written so far, as a number
    bool negative = false;     // kNumber
  };
  using Mask = std::array<std::uint64_t, 4>;

  State start_of(std::int32_t segment) const;
  // Moves `s` over one byte; false (s unspecified) if the byte cannot follow.
  bool step(State& s, std::uint8_t byte) const;
  bool number_step(const AnswerGrammar::Segment& seg, State& s, std::uint8_t byte) const;
  static bool accepting_number(const AnswerGrammar::Segment& seg, const State& s);
  // The answer may end here.
  bool accepting(const State& s) const;
  // A superset of the bytes that may follow `s`.
  const Mask& next_bytes(const State& s) const;
  void collect(std::uint32_t node, const State& state, std::vector<int>& out) const;

  std::shared_ptr<const AnswerGrammar> grammar_;
  std::shared_ptr<const TokenVocabulary> vocabulary_;
  std::vector<int> end_ids_;
  State state_;
  std::string text_;
};

}  // namespace sensecf::llmcf
