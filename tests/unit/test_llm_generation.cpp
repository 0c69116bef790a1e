// llm::generate beyond the basics of test_llm_model.cpp: per-sequence seeds,
// option validation, the batched sampler against an independent computation
// (top-k / top-p renormalised by hand in double precision, inverse CDF),
// constrained decoding (allowed_tokens) against logits computed separately,
// finished rows leaving the batch, and the default stop ids of a model
// directory (generation_config.json, the tokenizer's end-of-turn ids).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "llm_util.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/random.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/model/tiny.h"
#include "sensecf/llm/text/tokenizer.h"

namespace sensecf::llm {
namespace {

using test::some_ids;

// --- the sampler against a hand computation ------------------------------------

// The distribution temperature -> top-k -> top-p leaves over the ids of one
// row, computed directly from the definitions in double precision
// (transformers' TopKLogitsWarper: drop logits below the k-th, ties kept;
// TopPLogitsWarper: keep the smallest most-likely set whose mass reaches
// top_p). Also returns the ids most likely first (ties: lower id first).
struct Expected {
  std::vector<double> p;     // by id
  std::vector<int> order;    // ids, most likely first
};

Expected expected_distribution(const std::vector<float>& logits, double temperature, int top_k, double top_p) {
  const int V = static_cast<int>(logits.size());
  Expected e;
  e.order.resize(static_cast<std::size_t>(V));
  std::iota(e.order.begin(), e.order.end(), 0);
  std::stable_sort(e.order.begin(), e.order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<bool> kept(static_cast<std::size_t>(V), true);
  if (top_k > 0 && top_k < V) {
    const float kth = logits[static_cast<std::size_t>(e.order[static_cast<std::size_t>(top_k - 1)])];
    for (int i = 0; i < V; ++i) kept[static_cast<std::size_t>(i)] = logits[static_cast<std::size_t>(i)] >= kth;
  }
  const double top = logits[static_cast<std::size_t>(e.order[0])] / temperature;
  e.p.assign(static_cast<std::size_t>(V), 0.0);
  double total = 0;
  for (int i = 0; i < V; ++i) {
    if (!kept[static_cast<std::size_t>(i)]) continue;
    e.p[static_cast<std::size_t>(i)] = std::exp(logits[static_cast<std::size_t>(i)] / temperature - top);
    total += e.p[static_cast<std::size_t>(i)];
  }
  for (auto& q : e.p) q /= total;
  double before = 0;
  for (int id : e.order) {
    auto& q = e.p[static_cast<std::size_t>(id)];
    const double mass = q;
    if (before >= top_p) q = 0;
    before += mass;
  }
  total = std::accumulate(e.p.begin(), e.p.end(), 0.0);
  for (auto& q : e.p) q /= total;
  return e;
}

// The id the inverse CDF over `order` gives for u.
int inverse_cdf(const Expected& e, double u) {
  double acc = 0;
  for (int id : e.order) {
    acc += e.p[static_cast<std::size_t>(id)];
    if (u < acc) return id;
  }
  for (auto it = e.order.rbegin(); it != e.order.rend(); ++it)
    if (e.p[static_cast<std::size_t>(*it)] > 0) return *it;
  return -1;
}

GenerationOptions sampling(double temperature, int top_k, double top_p) {
  GenerationOptions o;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  return o;
}

// Frequencies of M draws at the evenly spread uniforms (i + 0.5) / M: each id's
// share differs from its probability by at most about 1 / M (float rounding aside).
std::vector<double> grid_frequencies(const std::vector<float>& row, const GenerationOptions& o, int M) {
  const std::size_t V = row.size();
  std::vector<float> logits;
  std::vector<double> u;
  for (int i = 0; i < M; ++i) {
    logits.insert(logits.end(), row.begin(), row.end());
    u.push_back((i + 0.5) / M);
  }
  const auto ids = pick_tokens(logits, static_cast<std::size_t>(M), o, u);
  std::vector<double> f(V, 0.0);
  for (int id : ids) f[static_cast<std::size_t>(id)] += 1.0 / M;
  return f;
}

const std::vector<float> kRow = {1.0f, 3.2f, -0.5f, 2.9f, 0.3f, 2.1f, -2.0f, 1.7f, 0.9f, 2.5f};

TEST(LlmSampler, ChosenIdIsTheHandComputedInverseCdf) {
  struct Case {
    double temperature;
    int top_k;
    double top_p;
  };
  for (const Case c : {Case{0.8, 0, 0.9}, Case{0.8, 4, 1.0}, Case{1.3, 5, 0.7}, Case{0.5, 0, 0.3}, Case{1.0, 0, 1.0}}) {
    const auto e = expected_distribution(kRow, c.temperature, c.top_k, c.top_p);
    for (double u : {0.0, 0.05, 0.2, 0.37, 0.5, 0.61, 0.74, 0.88, 0.93, 0.999}) {
      const auto o = sampling(c.temperature, c.top_k, c.top_p);
      // Away from the boundaries of the CDF (float rounding could go either way there).
      double acc = 0, nearest = 1;
      for (int id : e.order) nearest = std::min(nearest, std::abs(u - (acc += e.p[static_cast<std::size_t>(id)])));
      if (nearest < 1e-5) continue;
      const int expected = c.top_k == 0 && c.top_p >= 1 ? -1 : inverse_cdf(e, u);
      const int got = pick_tokens(kRow, 1, o, {u})[0];
      if (expected >= 0) {
        EXPECT_EQ(got, expected) << "T " << c.temperature << " k " << c.top_k << " p " << c.top_p << " u " << u;
      } else {
        // No filter: the CDF runs in id order.
        double mass = 0;
        int by_id = -1;
        for (std::size_t id = 0; id < kRow.size() && by_id < 0; ++id)
          if (u < (mass += e.p[id])) by_id = static_cast<int>(id);
        EXPECT_EQ(got, by_id) << "u " << u;
      }
    }
  }
}

TEST(LlmSampler, FrequenciesMatchTheRenormalisedTopKTopPProbabilities) {
  const int M = 20000;
  for (const auto& o : {sampling(0.8, 0, 0.9), sampling(0.8, 5, 0.9), sampling(1.5, 3, 1.0), sampling(0.7, 0, 1.0)}) {
    const auto e = expected_distribution(kRow, o.temperature, o.top_k, o.top_p);
    const auto f = grid_frequencies(kRow, o, M);
    for (std::size_t id = 0; id < kRow.size(); ++id)
      EXPECT_NEAR(f[id], e.p[id], 2.0 / M) << "id " << id << " T " << o.temperature << " k " << o.top_k << " p "
                                           << o.top_p;
  }
}

TEST(LlmSampler, TopKKeepsEveryTokenTiedWithTheKth) {
  // ids 1, 4 and 6 tie at the 2nd largest logit: top-2 keeps all three (transformers removes only smaller logits).
  const std::vector<float> row = {0.0f, 2.0f, -1.0f, 3.0f, 2.0f, 0.5f, 2.0f, -3.0f};
  const auto o = sampling(1.0, 2, 1.0);
  const auto e = expected_distribution(row, 1.0, 2, 1.0);
  const auto f = grid_frequencies(row, o, 10000);
  for (std::size_t id = 0; id < row.size(); ++id) EXPECT_NEAR(f[id], e.p[id], 2.0 / 10000) << "id " << id;
  EXPECT_GT(f[1], 0.0);
  EXPECT_GT(f[4], 0.0);
  EXPECT_GT(f[6], 0.0);
  EXPECT_EQ(f[0] + f[2] + f[5] + f[7], 0.0);
}

TEST(LlmSampler, AWideFlatRowSamplesTheSameAsTheDefinition) {
  // Top-p over a flat 5000-token row needs far more than the first candidates
  // the CPU sampler looks at: it must widen and still get the set right.
  const int V = 5000;
  Rng rng(3);
  std::vector<float> row;
  for (int i = 0; i < V; ++i) row.push_back(static_cast<float>(rng.normal()));
  const auto o = sampling(0.9, 0, 0.8);
  const auto e = expected_distribution(row, o.temperature, o.top_k, o.top_p);
  const int kept = static_cast<int>(std::count_if(e.p.begin(), e.p.end(), [](double q) { return q > 0; }));
  ASSERT_GT(kept, 1000);
  const int M = 4000;
  const auto f = grid_frequencies(row, o, M);
  // Every drawn id is in the kept set, and the mass of the kept set's ranks
  // (in blocks of 100 ids, most likely first) matches.
  for (int id = 0; id < V; ++id) {
    if (f[static_cast<std::size_t>(id)] > 0) {
      EXPECT_GT(e.p[static_cast<std::size_t>(id)], 0.0) << "id " << id;
    }
  }
  for (int block = 0; block * 100 < kept; ++block) {
    double fe = 0, pe = 0;
    for (int r = block * 100; r < std::min(kept, (block + 1) * 100); ++r) {
      fe += f[static_cast<std::size_t>(e.order[static_cast<std::size_t>(r)])];
      pe += e.p[static_cast<std::size_t>(e.order[static_cast<std::size_t>(r)])];
    }
    EXPECT_NEAR(fe, pe, 2.0 / M + 1e-4) << "ranks " << block * 100 << "+";
  }
}

TEST(LlmSampler, GreedyIsTheArgmax) {
  EXPECT_EQ(pick_tokens(kRow, 1, GenerationOptions{}, {}), std::vector<int>{1});
}

// --- validation ----------------------------------------------------------------

void expect_usage_error(const GenerationOptions& o, const std::string& key) {
  try {
    validate(o);
    ADD_FAILURE() << "no error for " << key;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

TEST(LlmGenerationOptions, OutOfRangeSettingsAreRefusedByName) {
  GenerationOptions o;
  o.max_new_tokens = -1;
  expect_usage_error(o, "lm.max_new_tokens");
  for (double t : {-0.5, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    o = {};
    o.temperature = t;
    expect_usage_error(o, "lm.temperature");
  }
  o = {};
  o.top_k = -1;
  expect_usage_error(o, "lm.top_k");
  for (double p : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    o = {};
    o.top_p = p;
    expect_usage_error(o, "lm.top_p");
  }
  o = {};
  o.temperature = 0.7;
  o.top_k = 40;
  o.top_p = 1.0;
  o.max_new_tokens = 0;
  EXPECT_NO_THROW(validate(o));
}

TEST(LlmGenerationOptions, TheOptionsCheckRefusesTopPZero) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--lm.top_p", "0"}, {"--lm.top_k", "-3"}, {"--lm.temperature", "-1"}, {"--lm.max_new_tokens", "-2"}}) {
    Options options("test", "generation options");
    GenerationOptions g;
    declare_options(options, g);
    try {
      options.parse({flag, value});
      ADD_FAILURE() << flag << " " << value << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(flag.substr(2)), std::string::npos) << e.what();
    }
  }
}

// --- generate on the tiny models -------------------------------------------------

class TinyGeneration : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { model_ = CausalLM::load(test::tiny_checkpoint(GetParam())); }
  int vocab() const { return static_cast<int>(model_->config().vocab_size); }
  std::unique_ptr<CausalLM> model_;
};

TEST_P(TinyGeneration, GenerateRefusesOptionsOutOfRange) {
  GenerationOptions o;
  o.temperature = 0.8;
  o.top_p = 0;
  try {
    generate(*model_, {some_ids(4, vocab(), 1)}, o, 0);
    FAIL() << "top_p 0 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("lm.top_p"), std::string::npos) << e.what();
  }
  o.top_p = 0.9;
  o.seeds = {1, 2};
  EXPECT_THROW(generate(*model_, {some_ids(4, vocab(), 1)}, o, 0), UsageError);  // 2 seeds, 1 prompt
}

TEST_P(TinyGeneration, ASeedGivesTheSameTokensAtAnyBatchPosition) {
  GenerationOptions o;
  o.max_new_tokens = 16;
  o.temperature = 0.8;
  o.top_p = 0.9;
  const auto prompt = some_ids(6, vocab(), 7);
  o.seeds = {42};
  const auto alone = generate(*model_, {prompt}, o, 0)[0];
  const std::vector<std::vector<int>> batch = {some_ids(3, vocab(), 1), some_ids(9, vocab(), 2),
                                               some_ids(2, vocab(), 3), prompt, some_ids(12, vocab(), 4)};
  o.seeds = {5, 6, 7, 42, 8};
  const auto together = generate(*model_, batch, o, 0);
  EXPECT_EQ(together[3], alone);
  EXPECT_EQ(alone.size(), 16u);
  // Another seed gives another text (the stream is really the seed's).
  o.seeds = {43};
  EXPECT_NE(generate(*model_, {prompt}, o, 0)[0], alone);
}

// The id among `allowed` with the largest of `row`'s logits, and its margin
// over the runner-up.
std::pair<int, float> best_allowed(const float* row, const std::vector<int>& allowed) {
  int best = -1;
  float top = -std::numeric_limits<float>::infinity(), second = top;
  for (int id : allowed) {
    const float v = row[id];
    if (v > top) {
      second = top;
      top = v;
      best = id;
    } else if (v > second) {
      second = v;
    }
  }
  return {best, top - second};
}

TEST_P(TinyGeneration, GreedyWithAllowedTokensPicksTheArgmaxAmongThem) {
  const int V = vocab();
  const std::vector<int> allowed = {3, 17, 25, 40, 58, V - 1};
  GenerationOptions o;
  o.max_new_tokens = 10;
  GenerationStats stats;
  o.stats = &stats;
  o.allowed_tokens = [&](std::size_t, std::vector<int>& ids) { ids = {allowed.rbegin(), allowed.rend()}; };
  const std::vector<std::vector<int>> prompts = {some_ids(5, V, 11), some_ids(8, V, 12)};
  const auto out = generate(*model_, prompts, o, 0);
  EXPECT_EQ(stats.masked_steps, 10);
  EXPECT_GE(stats.mask_seconds, 0.0);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(out[i].size(), 10u);
    auto ids = prompts[i];
    for (int token : out[i]) {
      // Logits of the whole sequence so far from the plain forward pass.
      const auto logits = model_->logits(ids);
      const auto [best, margin] = best_allowed(logits.data() + (ids.size() - 1) * static_cast<std::size_t>(V), allowed);
      if (margin > 1e-4f) {
        EXPECT_EQ(token, best) << "sequence " << i << " after " << ids.size() << " tokens";
      }
      EXPECT_NE(std::find(allowed.begin(), allowed.end(), token), allowed.end());
      ids.push_back(token);
    }
  }
}

TEST_P(TinyGeneration, SampledTokensStayInTheAllowedSet) {
  const std::set<int> allowed = {1, 2, 5, 8, 13, 21, 34};
  GenerationOptions o;
  o.max_new_tokens = 20;
  o.temperature = 0.8;
  o.top_p = 0.9;
  o.seed = 3;
  // Different sets per sequence, with a duplicate: sequence 1 may only take even ids of the set.
  o.allowed_tokens = [&](std::size_t sequence, std::vector<int>& ids) {
    for (int id : allowed)
      if (sequence == 0 || id % 2 == 0) ids.push_back(id);
    ids.push_back(ids.front());
  };
  int calls = 0;
  o.on_token = [&](std::size_t, int) { return ++calls > 0; };
  const auto out = generate(*model_, {some_ids(4, vocab(), 1), some_ids(7, vocab(), 2)}, o, 0);
  EXPECT_EQ(calls, 40);
  std::set<int> seen;
  for (int t : out[0]) {
    EXPECT_TRUE(allowed.count(t)) << t;
    seen.insert(t);
  }
  for (int t : out[1]) EXPECT_TRUE(t == 2 || t == 8 || t == 34) << t;
  EXPECT_GT(seen.size(), 1u);  // it samples, not just the first id
}

TEST_P(TinyGeneration, AnEmptyOrOutOfRangeAllowedListIsAnError) {
  GenerationOptions o;
  o.max_new_tokens = 6;
  int step_of_1 = 0;
  o.allowed_tokens = [&step_of_1](std::size_t sequence, std::vector<int>& ids) {
    if (sequence == 1 && step_of_1++ == 2) return;  // nothing allowed at its third step
    ids = {4, 9};
  };
  try {
    generate(*model_, {some_ids(4, vocab(), 1), some_ids(5, vocab(), 2)}, o, 0);
    FAIL() << "an empty allowed list was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 1 at step 2"), std::string::npos) << e.what();
  }
  o.allowed_tokens = [this](std::size_t, std::vector<int>& ids) { ids = {4, vocab()}; };
  EXPECT_THROW(generate(*model_, {some_ids(4, vocab(), 1)}, o, 0), Error);
}

// A batch where sequences stop at different steps, by stop id and by on_token:
// compacting the batch changes nothing, and each equals its prompt run alone.
TEST_P(TinyGeneration, FinishedRowsLeaveTheBatchWithoutChangingAnyToken) {
  const int V = vocab();
  const std::vector<std::vector<int>> prompts = {some_ids(3, V, 21), some_ids(9, V, 22), some_ids(5, V, 23),
                                                 some_ids(12, V, 24), some_ids(2, V, 25), some_ids(7, V, 26)};
  // Stops by on_token after this many tokens (0: never), per original sequence.
  const std::vector<std::size_t> stop_after = {2, 0, 4, 3, 0, 6};
  GenerationOptions base;
  base.max_new_tokens = 14;
  // A stop id taken from sequence 1's free run, so that it ends early by a stop id too.
  base.stop_ids = {generate(*model_, {prompts[1]}, base, 0)[0][5]};

  auto run = [&](const std::vector<std::size_t>& which, bool compact, const GenerationOptions& like,
                 GenerationStats* stats) {
    GenerationOptions o = like;
    o.compact = compact;
    o.stats = stats;
    std::vector<std::vector<int>> batch;
    std::vector<std::uint64_t> seeds;
    for (auto i : which) {
      batch.push_back(prompts[i]);
      seeds.push_back(100 + i);
    }
    if (o.temperature > 0) o.seeds = seeds;
    std::vector<std::size_t> counts(which.size(), 0);
    o.on_token = [&](std::size_t b, int) {
      const auto limit = stop_after[which[b]];
      return limit == 0 || ++counts[b] < limit;
    };
    return generate(*model_, batch, o, 0);
  };
  const std::vector<std::size_t> all = {0, 1, 2, 3, 4, 5};
  GenerationOptions sampled = base;
  sampled.temperature = 0.8;
  sampled.top_k = 40;
  sampled.top_p = 0.9;
  for (const auto& o : {base, sampled}) {
    GenerationStats with, without;
    const auto compacted = run(all, true, o, &with);
    const auto whole = run(all, false, o, &without);
    EXPECT_GT(with.compactions, 0);
    EXPECT_EQ(without.compactions, 0);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(compacted[i], whole[i]) << "sequence " << i << (o.temperature > 0 ? " sampled" : " greedy");
      if (stop_after[i] > 0) {
        EXPECT_LE(compacted[i].size(), stop_after[i]);
      }
      // Alone, with the same seed when sampled.
      EXPECT_EQ(compacted[i], run({i}, true, o, nullptr)[0]) << "sequence " << i << " alone";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, TinyGeneration, ::testing::Values("llama", "mistral"));

// --- stop ids of a model directory ---------------------------------------------

TEST(LlmStopIds, GenerationConfigEosIsReadAsIntOrList) {
  const test::TempDir dir;
  EXPECT_TRUE(read_generation_eos(dir.path().string()).empty());  // no file
  dir.write("generation_config.json", R"({"bos_token_id": 1, "eos_token_id": 7})");
  EXPECT_EQ(read_generation_eos(dir.path().string()), std::vector<int>{7});
  dir.write("generation_config.json", R"({"eos_token_id": [128001, 128008, 128009], "do_sample": true})");
  EXPECT_EQ(read_generation_eos(dir.path().string()), (std::vector<int>{128001, 128008, 128009}));
  dir.write("generation_config.json", R"({"temperature": 0.6})");
  EXPECT_TRUE(read_generation_eos(dir.path().string()).empty());
  dir.write("generation_config.json", R"({"eos_token_id": null})");
  EXPECT_TRUE(read_generation_eos(dir.path().string()).empty());
}

TEST(LlmStopIds, AMalformedGenerationConfigNamesFileAndField) {
  const test::TempDir dir;
  for (const char* text : {R"({"eos_token_id": "2"})", R"({"eos_token_id": [1, "x"]})", R"({"eos_token_id": -1})",
                           R"({"eos_token_id": 1.5})"}) {
    dir.write("generation_config.json", text);
    try {
      read_generation_eos(dir.path().string());
      ADD_FAILURE() << text << " accepted";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("generation_config.json"), std::string::npos) << what;
      EXPECT_NE(what.find("eos_token_id"), std::string::npos) << what;
    }
  }
  dir.write("generation_config.json", "{not json");
  try {
    read_generation_eos(dir.path().string());
    ADD_FAILURE() << "invalid JSON accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
  }
}

TEST(LlmStopIds, DefaultStopIdsJoinConfigGenerationConfigAndTokenizer) {
  const test::TempDir dir;
  const std::string model_dir = dir.file("tiny");
  write_tiny_checkpoint(model_dir, "llama", 11);
  const auto config = load_config(model_dir);
  const auto tokenizer = Tokenizer::load(model_dir + "/tokenizer.json");
  std::set<int> expected;
  for (auto id : config.eos_token_ids) expected.insert(static_cast<int>(id));
  for (int id : tokenizer.eos_ids()) expected.insert(id);
  EXPECT_EQ(default_stop_ids(model_dir, config, tokenizer), std::vector<int>(expected.begin(), expected.end()));
  // generation_config.json adds its own (here one already known, and two new).
  const int known = *expected.begin();
  std::ofstream(model_dir + "/generation_config.json")
      << "{\"eos_token_id\": [" << known << ", 5, 3]}";
  expected.insert({5, 3});
  EXPECT_EQ(default_stop_ids(model_dir, config, tokenizer), std::vector<int>(expected.begin(), expected.end()));
}

}  // namespace
}  // namespace sensecf::llm
