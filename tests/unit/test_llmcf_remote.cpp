// The SenseCF method with a remote model (llmcf/backend.h, remote/client.h):
// the same generator as with a local model, its answers from an
// OpenAI-compatible server on loopback (tests/support) that answers each
// prompt with the prompt's own instance, mutable values scaled by 0.8.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sensecf/cf/explain.h"
#include "sensecf/core/error.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/generator.h"
#include "sensecf/llmcf/parse.h"
#include "cf_cohort.h"
#include "support/http_server.h"
#include "support/openai_server.h"
#include "test_util.h"
#include "threshold_model.h"

namespace sensecf {
namespace {

struct Remote {
  testing::FakeOpenAi fake;
  testing::LoopbackHttpServer http;
  explicit Remote(testing::FakeOpenAiOptions o = {}) : fake(std::move(o)), http(fake.handler()) {}
};

struct Cohort {
  data::Dataset d = test::bounded_cohort(20, 12, 3);
  data::Matrix train_x;
  std::vector<int> train_y;
  test::Threshold threshold;
  cf::BlackBox box{threshold};
  Cohort() {
    std::vector<std::size_t> all(d.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    train_x = d.x.rows(all);
    train_y = d.y;
    llmcf::register_methods();
  }
  cf::ExplainRun run(const cf::CfOptions& o, std::size_t n) const {
    std::vector<std::size_t> q;
    for (std::size_t i = 0; i < n; ++i) q.push_back(i * 7);
    const data::Matrix query_x = d.x.rows(q);
    const cf::Context context{&box, &d.schema, &train_x, &train_y};
    return cf::explain_rows(o, context, query_x, cf::flip_targets(box, query_x));
  }
};

const Cohort& cohort() {
  static const Cohort c;
  return c;
}

cf::CfOptions options(const std::string& method, const Remote& r) {
  cf::CfOptions o;
  o.method = method;
  o.seed = 3;
  o.threads = 1;
  o.llm.remote.base_url = r.http.base_url() + "/v1";
  o.llm.remote.model_name = "fake-model";
  o.llm.remote.api_key_env = "SENSECF_TEST_NO_SUCH_KEY";
  o.llm.remote.retry_base = 0.01;
  o.llm.remote.retry_max = 0.02;
  o.llm.remote.timeout = 10;
  return o;
}

TEST(RemoteLlm, AnswersParseIntoCounterfactualsWithTheImmutablesKept) {
  Remote r;
  const auto& c = cohort();
  const auto run = c.run(options("llm:fake:zero-shot+free", r), 6);
  ASSERT_EQ(run.results.size(), 6u);
  EXPECT_EQ(r.fake.n_chat_requests(), 6u);
  for (const auto& q : run.results) {
    ASSERT_EQ(q.answers.size(), 1u);
    EXPECT_EQ(q.n_parsed, 1);
    ASSERT_EQ(q.cfs.size(), 1u) << q.note;
    const double* x = c.d.x.row(q.query * 7);
    for (std::size_t j = 0; j < c.d.schema.size(); ++j) {
      const auto& f = c.d.schema.features[j];
      if (f.immutable || f.is_categorical()) {
        EXPECT_DOUBLE_EQ(q.cfs[0].x[j], llmcf::round_value(f, x[j])) << f.name;
      } else {
        EXPECT_NEAR(q.cfs[0].x[j], llmcf::round_value(f, 0.8 * llmcf::round_value(f, x[j])), 0.006) << f.name;
      }
    }
    // Validity is f's verdict on the parsed CF.
    EXPECT_EQ(q.cfs[0].valid, (q.cfs[0].x[0] > 5 ? 1 : 0) == q.target);
  }
  // The generator reports what the client spent.
  EXPECT_EQ(run.usage.at("requests"), 6);
  EXPECT_EQ(run.usage.at("answers"), 6);
  EXPECT_EQ(run.usage.at("cache_hits"), 0);
  EXPECT_GT(run.usage.at("prompt_tokens"), 0);
  // Zero-shot: a system and a user message, no examples; greedy.
  const auto sent = r.fake.last_request();
  ASSERT_EQ(sent["messages"].size(), 2u);
  EXPECT_EQ(sent["messages"][1]["content"].get<std::string>().find("Example 1"), std::string::npos);
  EXPECT_EQ(sent["temperature"], 0.0);
  EXPECT_FALSE(sent.contains("response_format"));
}

TEST(RemoteLlm, FewShotPromptsCarryTheExamples) {
  Remote r;
  auto o = options("llm:fake:few-shot+free", r);
  o.llm.shots = 2;
  const auto run = cohort().run(o, 2);
  const auto user = r.fake.last_request()["messages"][1]["content"].get<std::string>();
  EXPECT_NE(user.find("Example 2:"), std::string::npos);
  EXPECT_EQ(user.find("Example 3:"), std::string::npos);
  EXPECT_EQ(run.results[0].n_parsed, 1);
}

TEST(RemoteLlm, ConstrainedSendsTheAnswerSchemaAndReadsAJsonAnswer) {
  testing::FakeOpenAiOptions fo;
  fo.answer = testing::AnswerMode::kJson;
  Remote r(fo);
  const auto& c = cohort();
  const auto run = c.run(options("llm:fake:zero-shot", r), 3);
  const auto schema = r.fake.last_request()["response_format"]["json_schema"]["schema"];
  ASSERT_TRUE(schema.is_object());
  EXPECT_EQ(schema["required"].size(), c.d.schema.size());
  EXPECT_EQ(schema["additionalProperties"], false);
  for (const auto& f : c.d.schema.features) {
    const auto& p = schema["properties"][f.name];
    if (f.immutable) {
      EXPECT_EQ(p["enum"].size(), 1u) << f.name;
    } else if (!f.is_categorical()) {
      EXPECT_DOUBLE_EQ(p["minimum"].get<double>(), f.lower) << f.name;
      EXPECT_DOUBLE_EQ(p["maximum"].get<double>(), f.upper) << f.name;
    }
  }
  for (const auto& q : run.results) {
    EXPECT_EQ(q.answers.at(0).front(), '{');
    EXPECT_EQ(q.n_parsed, 1) << q.answers[0];
    EXPECT_EQ(q.cfs.size(), 1u);
  }
}

TEST(RemoteLlm, AnAnswerWithoutABlockIsKeptAndCountsAgainstTheParseRate) {
  testing::FakeOpenAiOptions fo;
  fo.answer = testing::AnswerMode::kNoBlock;
  Remote r(fo);
  const auto run = cohort().run(options("llm:fake:zero-shot+free", r), 3);
  for (const auto& q : run.results) {
    EXPECT_TRUE(q.cfs.empty());
    ASSERT_EQ(q.answers.size(), 1u);
    EXPECT_FALSE(q.answers[0].empty());
    EXPECT_EQ(q.note, "none of 1 answers parsed");
  }
  EXPECT_DOUBLE_EQ(run.by_class.at(-1).parse_rate, 0.0);
}

TEST(RemoteLlm, AQueryWhoseRequestFailsGetsTheErrorAndTheOthersGoOn) {
  Remote r;
  r.fake.set_faults("500x2");
  auto o = options("llm:fake:zero-shot+free", r);
  o.llm.remote.max_retries = 1;
  o.llm.remote.max_concurrency = 1;  // the first query's two attempts take both 500s
  const auto run = cohort().run(o, 4);
  int failed = 0;
  for (const auto& q : run.results) {
    if (q.cfs.empty()) {
      ++failed;
      EXPECT_NE(q.note.find("no answer: "), std::string::npos) << q.note;
      EXPECT_NE(q.note.find("HTTP 500"), std::string::npos) << q.note;
      EXPECT_TRUE(q.answers.empty());
    }
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(run.usage.at("failures"), 1);
}

TEST(RemoteLlm, TheVerifierSamplesCandidatesWithTheirOwnSeeds) {
  Remote r;
  auto o = options("llm:fake:zero-shot+free+verify", r);
  o.llm.verify_candidates = 3;
  o.llm.remote.max_concurrency = 1;  // in order: the last request is a sampled candidate
  const auto run = cohort().run(o, 2);
  EXPECT_EQ(r.fake.n_chat_requests(), 6u);
  EXPECT_EQ(run.results[0].answers.size(), 3u);
  const auto sent = r.fake.last_request();
  EXPECT_GT(sent["temperature"].get<double>(), 0.0);
}

TEST(RemoteLlm, ARemoteModelIsNotFineTuned) {
  Remote r;
  EXPECT_THROW(cohort().run(options("llm:fake:fine-tuned", r), 1), UsageError);
}

}  // namespace
}  // namespace sensecf
