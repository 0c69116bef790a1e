// Constrained decoding of SenseCF answers (see llmcf/grammar.h): the vocabulary
// trie, the answer's segment automaton, and the walk of both that yields the
// allowed tokens.
//
// The automaton is deterministic over bytes. Its state is a segment index plus
//   kLeadingSpace  the count of whitespace bytes so far;
//   kText          a node of the grammar's text trie (fixed text is a chain,
//                  a categorical choice a small tree);
//   kNumber        a phase (below), the sign, the integer part and the decimal
//                  digits so far.
// A number prefix is kept only while some completion lands in the segment's
// range; all values are in units of 10^-kDecimals (hundredths), "magnitude"
// is the absolute value. Segments are entered lazily: a byte a segment cannot
// take moves to the next segment if the current one may end there.
//
// allowed_tokens() walks the vocabulary trie depth-first with the automaton:
// at each trie node it looks only at the children whose byte the automaton's
// state may take (a 256-bit mask; nodes with many children keep a bitmap, so
// those children are found by rank instead of scanned), steps the automaton
// over that byte, and descends only while the step succeeds. In a text state
// this touches a handful of nodes; in a number state the digit tokens.
#include "sensecf/llmcf/grammar.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <numeric>

#include "sensecf/core/error.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llmcf/answer.h"

namespace sensecf::llmcf {

namespace {

using Mask = std::array<std::uint64_t, 4>;
using Kind = AnswerGrammar::Segment::Kind;

constexpr int kWideNode = 16;  // children from which a trie node keeps a bitmap
constexpr double kMaxBound = 1e12;

void set_bit(Mask& m, std::uint8_t b) { m[b >> 6] |= std::uint64_t{1} << (b & 63); }
bool has_bit(const Mask& m, std::uint8_t b) { return (m[b >> 6] >> (b & 63)) & 1; }
Mask operator|(Mask a, const Mask& b) {
  for (int w = 0; w < 4; ++w) a[w] |= b[w];
  return a;
}
Mask bytes_of(std::string_view s) {
  Mask m{};
  for (char c : s) set_bit(m, static_cast<std::uint8_t>(c));
  return m;
}

const Mask kNumberBytes = bytes_of("0123456789.-");

// Number phases (State::node of a kNumber segment).
enum Phase : std::int32_t {
  kStart,     // nothing written
  kSign,      // "-"
  kZero,      // integer part "0": '.' or the end may follow
  kInteger,   // integer part >= 1
  kDot,       // "<integer>.": a decimal digit must follow
  kDecimal1,  // one decimal digit
  kDecimal2,  // two decimal digits (the last one non-zero)
};

bool overlaps(std::int64_t a, std::int64_t b, std::int64_t lo, std::int64_t hi) { return a <= hi && lo <= b; }

std::string escaped(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

// ---- the vocabulary trie -------------------------------------------------------

std::shared_ptr<const TokenVocabulary> TokenVocabulary::build(const llm::Tokenizer& tokenizer) {
  const int n = tokenizer.vocab_size();
  std::vector<std::string> bytes(static_cast<std::size_t>(n));
  std::vector<bool> excluded(static_cast<std::size_t>(n), false);
  for (int id = 0; id < n; ++id) {
    bytes[static_cast<std::size_t>(id)] = tokenizer.token_bytes(id);
    excluded[static_cast<std::size_t>(id)] = tokenizer.is_special(id);
  }
  return build(bytes, excluded);
}

std::shared_ptr<const TokenVocabulary> TokenVocabulary::build(const std::vector<std::string>& token_bytes,
                                                              const std::vector<bool>& excluded) {
  auto v = std::make_shared<TokenVocabulary>();
  const std::size_t n = token_bytes.size();
  v->bytes_begin_.reserve(n + 1);
  std::vector<int> order;
  order.reserve(n);
  for (std::size_t id = 0; id < n; ++id) {
    v->bytes_begin_.push_back(static_cast<std::uint32_t>(v->text_.size()));
    const bool skip = (id < excluded.size() && excluded[id]) || token_bytes[id].empty();
    if (skip) continue;
    v->text_ += token_bytes[id];
    order.push_back(static_cast<int>(id));
  }
  v->bytes_begin_.push_back(static_cast<std::uint32_t>(v->text_.size()));
  const TokenVocabulary& cv = *v;
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const std::string_view x = cv.bytes(a), y = cv.bytes(b);
    return x != y ? x < y : a < b;
  });

  // Breadth first, so that the children of a node get consecutive numbers. A
  // node stands for the sorted ids order[lo, hi) at depth `depth`; those whose
  // bytes end at the node come first.
  struct Pending {
    std::uint32_t node, lo, hi, depth;
  };
  std::deque<Pending> queue;
  auto add_node = [&](std::uint8_t byte) {
    v->byte_.push_back(byte);
    v->first_child_.push_back(0);
    v->n_children_.push_back(0);
    v->first_id_.push_back(0);
    v->n_ids_.push_back(0);
    v->wide_.push_back(-1);
    return static_cast<std::uint32_t>(v->byte_.size() - 1);
  };
  queue.push_back({add_node(0), 0, static_cast<std::uint32_t>(order.size()), 0});
  while (!queue.empty()) {
    const Pending p = queue.front();
    queue.pop_front();
    std::uint32_t k = p.lo;
    v->first_id_[p.node] = static_cast<std::uint32_t>(v->ids_.size());
    for (; k < p.hi && cv.bytes(order[k]).size() == p.depth; ++k) v->ids_.push_back(order[k]);
    v->n_ids_[p.node] = static_cast<std::uint16_t>(v->ids_.size() - v->first_id_[p.node]);
    v->first_child_[p.node] = static_cast<std::uint32_t>(v->byte_.size());
    Mask has{};
    while (k < p.hi) {
      const auto byte = static_cast<std::uint8_t>(cv.bytes(order[k])[p.depth]);
      std::uint32_t end = k;
      while (end < p.hi && static_cast<std::uint8_t>(cv.bytes(order[end])[p.depth]) == byte) ++end;
      queue.push_back({add_node(byte), k, end, p.depth + 1});
      set_bit(has, byte);
      k = end;
    }
    const auto n_children = static_cast<std::uint32_t>(v->byte_.size()) - v->first_child_[p.node];
    v->n_children_[p.node] = static_cast<std::uint16_t>(n_children);
    if (n_children >= kWideNode) {
      WideNode w{};
      std::uint16_t below = 0;
      for (int i = 0; i < 4; ++i) {
        w.has[i] = has[i];
        w.rank[i] = below;
        below = static_cast<std::uint16_t>(below + __builtin_popcountll(has[i]));
      }
      v->wide_[p.node] = static_cast<std::int32_t>(v->wide_nodes_.size());
      v->wide_nodes_.push_back(w);
    }
  }
  return v;
}

std::string_view TokenVocabulary::bytes(int id) const {
  if (id < 0 || id >= vocab_size()) return {};
  const auto i = static_cast<std::size_t>(id);
  return std::string_view(text_).substr(bytes_begin_[i], bytes_begin_[i + 1] - bytes_begin_[i]);
}

// ---- the answer grammar -----------------------------------------------------------

AnswerGrammar::AnswerGrammar(std::vector<Segment> segments) : segments_(std::move(segments)) {
  const std::size_t n = segments_.size();
  auto where = [&](std::size_t k) {
    return fmt::format("answer grammar, segment {} of {}", k, n);
  };
  root_.assign(n, -1);
  edge_begin_.clear();
  std::vector<std::vector<Edge>> node_edges;  // while building
  std::vector<std::int32_t> node_segment;
  for (std::size_t k = 0; k < n; ++k) {
    const Segment& s = segments_[k];
    switch (s.kind) {
      case Kind::kLeadingSpace:
        if (k != 0) throw Error(where(k) + ": leading space may only be the first segment");
        break;
      case Kind::kNumber:
        if (!(s.lower <= s.upper)) {
          throw Error(fmt::format("{}: empty number range [{}, {}]", where(k), s.lower, s.upper));
        }
        if (std::max(std::abs(s.lower), std::abs(s.upper)) > static_cast<std::int64_t>(kMaxBound * 100)) {
          throw Error(fmt::format("{}: number range [{}, {}] beyond +-1e14 hundredths", where(k), s.lower, s.upper));
        }
        if (k + 1 < n && segments_[k + 1].kind != Kind::kText) {
          throw Error(where(k) + ": a number must be followed by text");
        }
        break;
      case Kind::kText: {
        if (s.texts.empty()) throw Error(where(k) + ": text segment without alternatives");
        const auto root = static_cast<std::int32_t>(node_edges.size());
        root_[k] = root;
        node_edges.emplace_back();
        node_segment.push_back(static_cast<std::int32_t>(k));
        terminal_.push_back(false);
        for (const std::string& text : s.texts) {
          if (text.empty()) throw Error(where(k) + ": an empty alternative");
          std::int32_t at = root;
          for (char c : text) {
            const auto byte = static_cast<std::uint8_t>(c);
            std::int32_t next = -1;
            for (const Edge& e : node_edges[static_cast<std::size_t>(at)]) {
              if (e.byte == byte) next = e.target;
            }
            if (next < 0) {
              next = static_cast<std::int32_t>(node_edges.size());
              node_edges[static_cast<std::size_t>(at)].push_back({byte, next});
              node_edges.emplace_back();
              node_segment.push_back(static_cast<std::int32_t>(k));
              terminal_.push_back(false);
            }
            at = next;
          }
          terminal_[static_cast<std::size_t>(at)] = true;
        }
        break;
      }
    }
  }
  for (const auto& edges : node_edges) {
    edge_begin_.push_back(static_cast<std::uint32_t>(edges_.size()));
    edges_.insert(edges_.end(), edges.begin(), edges.end());
  }
  edge_begin_.push_back(static_cast<std::uint32_t>(edges_.size()));

  // First bytes, from the back (a leading-space segment may be empty).
  first_bytes_.assign(n + 1, Mask{});
  segment_next_.assign(n, Mask{});
  for (std::size_t k = n; k-- > 0;) {
    const Segment& s = segments_[k];
    const Mask& after = first_bytes_[k + 1];
    switch (s.kind) {
      case Kind::kLeadingSpace:
        first_bytes_[k] = bytes_of(" \n") | after;
        segment_next_[k] = first_bytes_[k];
        break;
      case Kind::kNumber:
        first_bytes_[k] = bytes_of(s.lower < 0 ? "0123456789-" : "0123456789");
        segment_next_[k] = kNumberBytes | after;
        for (char c : std::string_view("0123456789.-")) {
          if (has_bit(after, static_cast<std::uint8_t>(c))) {
            throw Error(fmt::format("{}: the text after a number may not start with '{}'", where(k), c));
          }
        }
        break;
      case Kind::kText:
        for (const std::string& text : s.texts) set_bit(first_bytes_[k], static_cast<std::uint8_t>(text[0]));
        break;
    }
  }
  node_next_.assign(terminal_.size(), Mask{});
  for (std::size_t node = 0; node < terminal_.size(); ++node) {
    Mask own{};
    for (std::uint32_t e = edge_begin_[node]; e < edge_begin_[node + 1]; ++e) set_bit(own, edges_[e].byte);
    const auto k = static_cast<std::size_t>(node_segment[node]);
    if (terminal_[node]) {
      const Mask& after = first_bytes_[k + 1];
      for (int w = 0; w < 4; ++w) {
        if (own[w] & after[w]) {
          throw Error(where(k) + ": ambiguous alternatives: one ends where another goes on with a byte the next "
                                 "segment may also start with");
        }
      }
      node_next_[node] = own | after;
    } else {
      node_next_[node] = own;
    }
  }
}

std::string AnswerGrammar::describe() const {
  std::string out;
  for (std::size_t k = 0; k < segments_.size(); ++k) {
    const Segment& s = segments_[k];
    out += fmt::format("{:3} ", k);
    switch (s.kind) {
      case Kind::kLeadingSpace:
        out += fmt::format("leading space (at most {} bytes)", kMaxLeadingSpace);
        break;
      case Kind::kNumber:
        out += fmt::format("number in [{}, {}] x 10^-{}", s.lower, s.upper, kDecimals);
        break;
      case Kind::kText:
        out += s.texts.size() == 1 ? "text " : "one of ";
        for (std::size_t a = 0; a < s.texts.size(); ++a) out += (a ? " | " : "") + escaped(s.texts[a]);
        break;
    }
    if (s.feature >= 0) out += fmt::format(" (feature {})", s.feature);
    out += "\n";
  }
  return out;
}

AnswerGrammar answer_grammar(const data::Schema& schema, const double* factual) {
  using Segment = AnswerGrammar::Segment;
  std::vector<Segment> segments;
  segments.push_back({Kind::kLeadingSpace, {}, 0, 0, -1});
  std::string text = std::string(kOpenTag) + "\n";
  auto flush = [&] {
    segments.push_back({Kind::kText, {text}, 0, 0, -1});
    text.clear();
  };
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const data::Feature& f = schema.features[j];
    const int feature = static_cast<int>(j);
    text += "- " + feature_label(f) + ": ";
    if (f.immutable) {
      text += format_value(f, factual[j]);
    } else if (f.is_categorical()) {
      Segment choice{Kind::kText, {}, 0, 0, feature};
      std::vector<int> codes = f.allowed;
      if (codes.empty()) {
        codes.resize(f.categories.size());
        std::iota(codes.begin(), codes.end(), 0);
      }
      for (int code : codes) {
        if (code < 0 || code >= static_cast<int>(f.categories.size())) {
          throw Error(fmt::format("feature '{}': allowed code {} is not one of its {} categories", f.name, code,
                                  f.categories.size()));
        }
        const std::string& category = f.categories[static_cast<std::size_t>(code)];
        if (category.empty() || category.find('\n') != std::string::npos) {
          throw Error(
              fmt::format("feature '{}': category {} is empty or holds a newline; the answer format has one "
                          "line per feature",
                          f.name, escaped(category)),
              "rename the category in the data file to a non-empty name on one line, then retrain the "
              "classifier (`sensecf train-clf`) so schema.json has it");
        }
        choice.texts.push_back(category);
      }
      if (choice.texts.empty()) {
        throw Error(fmt::format("feature '{}' has no categories", f.name), "is the schema loaded from its data?");
      }
      flush();
      segments.push_back(std::move(choice));
    } else {
      if (!std::isfinite(f.lower) || !std::isfinite(f.upper) || f.lower > f.upper ||
          std::max(std::abs(f.lower), std::abs(f.upper)) > kMaxBound) {
        throw Error(fmt::format("feature '{}': permitted range [{}, {}] is not a finite range within +-1e12", f.name,
                                f.lower, f.upper),
                    "the bounds come from Schema::learn_bounds on the training rows");
      }
      // The values format_value writes for x in [lower, upper] (round_value's rounding).
      const double scale = std::pow(10.0, kDecimals);
      flush();
      segments.push_back({Kind::kNumber, {}, std::llround(f.lower * scale), std::llround(f.upper * scale), feature});
    }
    text += "\n";
  }
  text += kCloseTag;
  flush();
  return AnswerGrammar(std::move(segments));
}

// ---- the matcher ---------------------------------------------------------------------

GrammarMatcher::GrammarMatcher(AnswerGrammar grammar, std::shared_ptr<const TokenVocabulary> vocabulary,
                               std::vector<int> end_ids)
    : grammar_(std::make_shared<const AnswerGrammar>(std::move(grammar))),
      vocabulary_(std::move(vocabulary)),
      end_ids_(std::move(end_ids)) {
  if (!vocabulary_) throw Error("GrammarMatcher: no token vocabulary");
  state_ = start_of(0);
}

GrammarMatcher::State GrammarMatcher::start_of(std::int32_t segment) const {
  State s;
  s.segment = segment;
  if (segment < static_cast<std::int32_t>(grammar_->segments_.size()) &&
      grammar_->segments_[static_cast<std::size_t>(segment)].kind == Kind::kText) {
    s.node = grammar_->root_[static_cast<std::size_t>(segment)];
  }
  return s;
}

bool GrammarMatcher::number_step(const AnswerGrammar::Segment& seg, State& s, std::uint8_t byte) const {
  // The magnitudes the sign allows.
  const std::int64_t pos_lo = std::max<std::int64_t>(seg.lower, 0), pos_hi = seg.upper;
  const std::int64_t neg_lo = std::max<std::int64_t>(-seg.upper, 1), neg_hi = -seg.lower;
  auto lo = [&] { return s.negative ? neg_lo : pos_lo; };
  auto hi = [&] { return s.negative ? neg_hi : pos_hi; };
  const bool digit = byte >= '0' && byte <= '9';
  const int d = byte - '0';
  switch (s.node) {
    case kStart:
      if (byte == '-') {
        s.negative = true;
        s.node = kSign;
        return neg_lo <= neg_hi;
      }
      [[fallthrough]];
    case kSign:
      if (!digit) return false;
      if (d == 0) {
        s.node = kZero;
        return overlaps(s.negative ? 1 : 0, 99, lo(), hi());
      }
      s.node = kInteger;
      s.integer = d;
      break;  // checked below
    case kZero:
      if (byte != '.') return false;
      s.node = kDot;
      return overlaps(1, 99, lo(), hi());
    case kInteger:
      if (byte == '.') {
        s.node = kDot;
        return overlaps(s.integer * 100 + 1, s.integer * 100 + 99, lo(), hi());
      }
      if (!digit) return false;
      s.integer = s.integer * 10 + d;
      break;  // checked below
    case kDot:
      if (!digit) return false;
      s.node = kDecimal1;
      s.decimals = static_cast<std::int8_t>(d);
      return d == 0 ? overlaps(s.integer * 100 + 1, s.integer * 100 + 9, lo(), hi())
                    : overlaps(s.integer * 100 + d * 10, s.integer * 100 + d * 10 + 9, lo(), hi());
    case kDecimal1: {
      if (!digit || d == 0) return false;  // no trailing zero
      s.node = kDecimal2;
      s.decimals = static_cast<std::int8_t>(s.decimals * 10 + d);
      const std::int64_t m = s.integer * 100 + s.decimals;
      return m >= lo() && m <= hi();
    }
    default:
      return false;
  }
  // kInteger: some integer starting with these digits, with any decimals, is in range.
  for (std::int64_t first = s.integer * 100, width = 100; first <= hi(); first *= 10, width *= 10) {
    if (first + width - 1 >= lo()) return true;
  }
  return false;
}

bool GrammarMatcher::step(State& s, std::uint8_t byte) const {
  const AnswerGrammar& g = *grammar_;
  const auto n = static_cast<std::int32_t>(g.segments_.size());
  while (s.segment < n) {
    const AnswerGrammar::Segment& seg = g.segments_[static_cast<std::size_t>(s.segment)];
    switch (seg.kind) {
      case Kind::kLeadingSpace:
        if ((byte == ' ' || byte == '\n') && s.node < kMaxLeadingSpace) {
          ++s.node;
          return true;
        }
        break;
      case Kind::kText: {
        const auto node = static_cast<std::size_t>(s.node);
        for (std::uint32_t e = g.edge_begin_[node]; e < g.edge_begin_[node + 1]; ++e) {
          if (g.edges_[e].byte == byte) {
            s.node = g.edges_[e].target;
            // Leave a finished segment now, so that complete() holds after "</new>".
            const auto t = static_cast<std::size_t>(s.node);
            if (g.terminal_[t] && g.edge_begin_[t] == g.edge_begin_[t + 1]) s = start_of(s.segment + 1);
            return true;
          }
        }
        if (!g.terminal_[node]) return false;
        break;
      }
      case Kind::kNumber: {
        State t = s;
        if (number_step(seg, t, byte)) {
          s = t;
          return true;
        }
        if (!accepting_number(seg, s)) return false;
        break;
      }
    }
    s = start_of(s.segment + 1);
  }
  return false;
}

bool GrammarMatcher::accepting_number(const AnswerGrammar::Segment& seg, const State& s) {
  std::int64_t m;
  switch (s.node) {
    case kZero: m = 0; break;
    case kInteger: m = s.integer * 100; break;
    case kDecimal1:
      if (s.decimals == 0) return false;
      m = s.integer * 100 + s.decimals * 10;
      break;
    case kDecimal2: m = s.integer * 100 + s.decimals; break;
    default: return false;
  }
  const std::int64_t v = s.negative ? -m : m;
  return (!s.negative || m > 0) && v >= seg.lower && v <= seg.upper;
}

bool GrammarMatcher::accepting(const State& state) const {
  const AnswerGrammar& g = *grammar_;
  const auto n = static_cast<std::int32_t>(g.segments_.size());
  State s = state;
  while (s.segment < n) {
    const AnswerGrammar::Segment& seg = g.segments_[static_cast<std::size_t>(s.segment)];
    const bool may_end = seg.kind == Kind::kLeadingSpace ||
                         (seg.kind == Kind::kText && g.terminal_[static_cast<std::size_t>(s.node)]) ||
                         (seg.kind == Kind::kNumber && accepting_number(seg, s));
    if (!may_end) return false;
    s = start_of(s.segment + 1);
  }
  return true;
}

const GrammarMatcher::Mask& GrammarMatcher::next_bytes(const State& s) const {
  static const Mask none{};
  const AnswerGrammar& g = *grammar_;
  if (s.segment >= static_cast<std::int32_t>(g.segments_.size())) return none;
  if (g.segments_[static_cast<std::size_t>(s.segment)].kind == Kind::kText) {
    return g.node_next_[static_cast<std::size_t>(s.node)];
  }
  return g.segment_next_[static_cast<std::size_t>(s.segment)];
}

void GrammarMatcher::collect(std::uint32_t node, const State& state, std::vector<int>& out) const {
  const TokenVocabulary& v = *vocabulary_;
  const Mask& mask = next_bytes(state);
  // In a number, a number byte stays in the number (the text after a number
  // never starts with one): the digit tokens skip step()'s segment dispatch.
  const auto& segments = grammar_->segments_;
  const AnswerGrammar::Segment* number = nullptr;
  if (state.segment < static_cast<std::int32_t>(segments.size()) &&
      segments[static_cast<std::size_t>(state.segment)].kind == Kind::kNumber) {
    number = &segments[static_cast<std::size_t>(state.segment)];
  }
  auto visit = [&](std::uint32_t child, std::uint8_t byte) {
    State s = state;
    const bool ok = number && has_bit(kNumberBytes, byte) ? number_step(*number, s, byte) : step(s, byte);
    if (!ok) return;
    const std::uint32_t first = v.first_id_[child];
    out.insert(out.end(), v.ids_.begin() + first, v.ids_.begin() + first + v.n_ids_[child]);
    if (v.n_children_[child] != 0) collect(child, s, out);
  };
  const std::uint32_t first_child = v.first_child_[node];
  if (v.wide_[node] >= 0) {
    const TokenVocabulary::WideNode& wide = v.wide_nodes_[static_cast<std::size_t>(v.wide_[node])];
    for (int w = 0; w < 4; ++w) {
      for (std::uint64_t bits = mask[w] & wide.has[w]; bits != 0; bits &= bits - 1) {
        const int bit = __builtin_ctzll(bits);
        const auto below = static_cast<std::uint32_t>(__builtin_popcountll(wide.has[w] & ((std::uint64_t{1} << bit) - 1)));
        visit(first_child + wide.rank[w] + below, static_cast<std::uint8_t>(w * 64 + bit));
      }
    }
  } else {
    const std::uint32_t end = first_child + v.n_children_[node];
    for (std::uint32_t child = first_child; child < end; ++child) {
      const std::uint8_t byte = v.byte_[child];
      if (has_bit(mask, byte)) visit(child, byte);
    }
  }
}

void GrammarMatcher::allowed_tokens(std::vector<int>& out) const {
  out.clear();
  collect(0, state_, out);
  if (accepting(state_)) out.insert(out.end(), end_ids_.begin(), end_ids_.end());
}

std::vector<int> GrammarMatcher::allowed_tokens() const {
  std::vector<int> out;
  allowed_tokens(out);
  return out;
}

bool GrammarMatcher::accept(int token) {
  if (accepting(state_) && std::find(end_ids_.begin(), end_ids_.end(), token) != end_ids_.end()) return true;
  const std::string_view bytes = vocabulary_->bytes(token);
  if (bytes.empty()) return false;
  State s = state_;
  for (char c : bytes) {
    if (!step(s, static_cast<std::uint8_t>(c))) return false;
  }
  state_ = s;
  text_.append(bytes);
  return true;
}

bool GrammarMatcher::complete() const {
  return state_.segment >= static_cast<std::int32_t>(grammar_->segments_.size());
}

}  // namespace sensecf::llmcf
