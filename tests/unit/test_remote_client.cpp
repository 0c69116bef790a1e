// The remote LLM client (remote/client.h) against a real HTTP server on
// loopback (tests/support): answers, retries on 429 / 5xx / timeouts / dropped
// connections / malformed bodies, Retry-After, giving up with a clear error,
// refusals that stop the run, the response cache (a second run sends nothing),
// offline mode, concurrency and rate limits, and the API key kept out of every
// message and file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/remote/client.h"
#include "sensecf/remote/hash.h"
#include "support/http_server.h"
#include "support/openai_server.h"
#include "test_util.h"

namespace sensecf {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A prompt in the SenseCF format, so the fake server's echo answer is a CF.
const char* kPrompt =
    "Fixed Features: Do not modify these features: age (years).\n\n"
    "Now consider the following instance where the model predicted label 1 (high stress):\n"
    "- steps_mean (steps/min): 10\n"
    "- age (years): 40\n"
    "\n"
    "Instruction: ...";

remote::ChatRequest request(std::uint64_t seed = 1) {
  remote::ChatRequest r;
  r.messages = {{"system", "You are an expert."}, {"user", kPrompt}};
  r.max_tokens = 64;
  r.seed = seed;
  return r;
}

remote::RemoteOptions options(const testing::LoopbackHttpServer& server) {
  remote::RemoteOptions o;
  o.base_url = server.base_url() + "/v1";
  o.model_name = "fake-model";
  o.api_key_env = "SENSECF_TEST_NO_SUCH_KEY";
  o.retry_base = 0.01;
  o.retry_max = 0.05;
  o.timeout = 5;
  o.max_concurrency = 1;
  return o;
}

// The fake server and its loopback HTTP server (declared in this order: the
// handler refers to the fake).
struct Server {
  testing::FakeOpenAi fake;
  testing::LoopbackHttpServer http;
  explicit Server(testing::FakeOpenAiOptions o = {}) : fake(std::move(o)), http(fake.handler()) {}
};

const std::string kEcho = "<new>\n- steps_mean (steps/min): 8\n- age (years): 40\n</new>";

TEST(RemoteClient, AnswersWithTheServersTextAndUsage) {
  Server s;
  remote::Client client(options(s.http));
  std::vector<remote::ChatRequest> rs{request(1), request(2)};
  rs[1].temperature = 0.7;
  rs[1].top_p = 0.9;
  client.complete(rs);
  for (const auto& r : rs) {
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.answer, kEcho);
    EXPECT_EQ(r.attempts, 1);
    EXPECT_FALSE(r.from_cache);
    EXPECT_GT(r.prompt_tokens, 0);
    EXPECT_GT(r.completion_tokens, 0);
  }
  // What went over the wire: model, messages, sampling, seed; no schema asked for.
  const auto sent = s.fake.last_request();
  EXPECT_EQ(sent["model"], "fake-model");
  EXPECT_EQ(sent["messages"].size(), 2u);
  EXPECT_EQ(sent["messages"][1]["content"], kPrompt);
  EXPECT_DOUBLE_EQ(sent["temperature"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(sent["top_p"].get<double>(), 0.9);
  EXPECT_EQ(sent["seed"], 2);
  EXPECT_EQ(sent["max_tokens"], 64);
  EXPECT_FALSE(sent.contains("response_format"));
  const auto u = client.usage();
  EXPECT_EQ(u.requests, 2);
  EXPECT_EQ(u.answers, 2);
  EXPECT_EQ(u.retries, 0);
  EXPECT_EQ(u.prompt_tokens, rs[0].prompt_tokens + rs[1].prompt_tokens);
}

TEST(RemoteClient, AJsonSchemaGoesOutAsAStrictResponseFormat) {
  Server s;
  remote::Client client(options(s.http));
  std::vector<remote::ChatRequest> rs{request()};
  rs[0].json_schema = {{"type", "object"}, {"properties", {{"a", {{"type", "number"}}}}}};
  client.complete(rs);
  const auto rf = s.fake.last_request()["response_format"];
  EXPECT_EQ(rf["type"], "json_schema");
  EXPECT_EQ(rf["json_schema"]["strict"], true);
  EXPECT_EQ(rf["json_schema"]["schema"], rs[0].json_schema);
}

TEST(RemoteClient, RetriesA429AfterItsRetryAfter) {
  Server s;
  s.fake.set_faults("429:1");
  remote::Client client(options(s.http));  // backoff alone would wait <= 0.05 s
  std::vector<remote::ChatRequest> rs{request()};
  const auto t = Clock::now();
  client.complete(rs);
  EXPECT_GE(since(t), 0.95) << "Retry-After: 1 was not honoured";
  EXPECT_EQ(rs[0].error, "");
  EXPECT_EQ(rs[0].answer, kEcho);
  EXPECT_EQ(rs[0].attempts, 2);
  EXPECT_EQ(s.fake.count(429), 1u);
  EXPECT_EQ(client.usage().retries, 1);
}

TEST(RemoteClient, ABurstOf500sIsRetriedThrough) {
  Server s;
  s.fake.set_faults("500x3,503");
  remote::Client client(options(s.http));
  std::vector<remote::ChatRequest> rs{request()};
  client.complete(rs);
  EXPECT_EQ(rs[0].error, "");
  EXPECT_EQ(rs[0].answer, kEcho);
  EXPECT_EQ(rs[0].attempts, 5);
}

TEST(RemoteClient, GivesUpAfterTheLastRetryWithAClearErrorAndGoesOn) {
  Server s;
  s.fake.set_faults("500x3");
  auto o = options(s.http);
  o.max_retries = 2;
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request(1), request(2)};
  client.complete(rs);
  EXPECT_EQ(rs[0].answer, "");
  EXPECT_NE(rs[0].error.find("after 3 attempts"), std::string::npos) << rs[0].error;
  EXPECT_NE(rs[0].error.find("HTTP 500"), std::string::npos) << rs[0].error;
  EXPECT_NE(rs[0].error.find("fake-model"), std::string::npos) << rs[0].error;
  EXPECT_EQ(rs[1].error, "");  // the next request is answered
  EXPECT_EQ(rs[1].answer, kEcho);
  EXPECT_EQ(client.usage().failures, 1);
  EXPECT_EQ(client.usage().answers, 1);
}

TEST(RemoteClient, ATimeoutIsRetried) {
  Server s;
  s.fake.set_faults("timeout:3000");
  auto o = options(s.http);
  o.timeout = 0.3;
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request()};
  const auto t = Clock::now();
  client.complete(rs);
  EXPECT_LT(since(t), 2.5);
  EXPECT_EQ(rs[0].error, "");
  EXPECT_EQ(rs[0].answer, kEcho);
  EXPECT_EQ(rs[0].attempts, 2);
}

TEST(RemoteClient, AConnectionDroppedMidBodyIsRetried) {
  Server s;
  s.fake.set_faults("drop");
  remote::Client client(options(s.http));
  std::vector<remote::ChatRequest> rs{request()};
  client.complete(rs);
  EXPECT_EQ(rs[0].error, "");
  EXPECT_EQ(rs[0].answer, kEcho);
  EXPECT_EQ(rs[0].attempts, 2);
}

TEST(RemoteClient, AMalformedBodyIsRetriedThenReported) {
  Server s;
  s.fake.set_faults("malformed");
  remote::Client client(options(s.http));
  std::vector<remote::ChatRequest> rs{request()};
  client.complete(rs);
  EXPECT_EQ(rs[0].answer, kEcho);
  EXPECT_EQ(rs[0].attempts, 2);

  s.fake.set_faults("malformed");
  auto o = options(s.http);
  o.max_retries = 0;
  remote::Client once(o);
  std::vector<remote::ChatRequest> again{request()};
  once.complete(again);
  EXPECT_NE(again[0].error.find("not JSON"), std::string::npos) << again[0].error;
}

TEST(RemoteClient, AnAnswerWithoutABlockOrAVeryLongOneIsPassedOnAsText) {
  Server s;
  s.fake.set_faults("noblock,long");
  remote::Client client(options(s.http));
  std::vector<remote::ChatRequest> rs{request(1), request(2)};
  client.complete(rs);
  EXPECT_EQ(rs[0].error, "");
  EXPECT_EQ(rs[0].answer.find("<new>"), std::string::npos);
  EXPECT_EQ(rs[1].error, "");
  EXPECT_GT(rs[1].answer.size(), 100000u);
  EXPECT_EQ(rs[1].answer.rfind(kEcho, 0), 0u);
}

TEST(RemoteClient, AWrongKeyStopsTheRunSayingWhereTheKeyComesFrom) {
  testing::FakeOpenAiOptions fo;
  fo.api_key = "sk-test-expected-key";
  Server s(fo);
  auto o = options(s.http);
  o.api_key_env = "SENSECF_TEST_REMOTE_KEY";
  ::setenv("SENSECF_TEST_REMOTE_KEY", "sk-test-wrong-key-4711", 1);
  {
    remote::Client client(o);
    std::vector<remote::ChatRequest> rs{request(1), request(2), request(3)};
    try {
      client.complete(rs);
      FAIL() << "a 401 must stop the run";
    } catch (const PermanentError& e) {  // the sweep does not retry the task
      const std::string what = std::string(e.what()) + " " + e.hint();
      EXPECT_NE(what.find("HTTP 401"), std::string::npos) << what;
      EXPECT_NE(what.find("$SENSECF_TEST_REMOTE_KEY"), std::string::npos) << what;
      EXPECT_EQ(what.find("sk-test-wrong-key-4711"), std::string::npos) << what;
    }
    EXPECT_EQ(s.fake.count(401), 1u) << "no request after the first refusal";
  }
  ::setenv("SENSECF_TEST_REMOTE_KEY", "sk-test-expected-key", 1);
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request()};
  client.complete(rs);
  EXPECT_EQ(rs[0].answer, kEcho);
  ::unsetenv("SENSECF_TEST_REMOTE_KEY");
}

TEST(RemoteClient, TheKeyIsScrubbedFromWhatAServerEchoes) {
  // A server that echoes the Authorization header in its error, as some
  // proxies do: the client's error must not carry the key on.
  testing::LoopbackHttpServer http([](const testing::HttpRequest& r) {
    testing::HttpReply reply;
    reply.status = 400;
    reply.body = R"({"error": {"message": "bad request from )" + r.headers.at("authorization") + R"("}})";
    return reply;
  });
  auto o = options(http);
  o.api_key_env = "SENSECF_TEST_REMOTE_KEY2";
  ::setenv("SENSECF_TEST_REMOTE_KEY2", "sk-test-secret-0815", 1);
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request()};
  client.complete(rs);
  ::unsetenv("SENSECF_TEST_REMOTE_KEY2");
  EXPECT_NE(rs[0].error.find("HTTP 400"), std::string::npos) << rs[0].error;
  EXPECT_NE(rs[0].error.find("Bearer ***"), std::string::npos) << rs[0].error;
  EXPECT_EQ(rs[0].error.find("sk-test-secret-0815"), std::string::npos) << rs[0].error;
  EXPECT_EQ(rs[0].attempts, 1) << "a 400 is not retried";
}

TEST(RemoteClient, AWrongPathStopsTheRunPointingAtTheUrl) {
  Server s;
  auto o = options(s.http);
  o.base_url = s.http.base_url() + "/nope";
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request()};
  try {
    client.complete(rs);
    FAIL() << "a 404 must stop the run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("lm.base_url"), std::string::npos) << e.hint();
  }
}

TEST(RemoteClient, TheCacheMakesASecondRunSendNothing) {
  test::TempDir dir;
  Server s;
  auto o = options(s.http);
  o.cache_dir = dir.file("cache");
  o.api_key_env = "SENSECF_TEST_REMOTE_KEY3";
  ::setenv("SENSECF_TEST_REMOTE_KEY3", "sk-test-never-on-disk-1234", 1);
  std::vector<remote::ChatRequest> first{request(1), request(2), request(3)};
  {
    remote::Client client(o);
    client.complete(first);
  }
  ASSERT_EQ(s.fake.n_chat_requests(), 3u);
  // The entries are named by the SHA-256 of the exact body sent.
  remote::Client client(o);
  for (const auto& r : first) EXPECT_TRUE(std::filesystem::exists(remote::ResponseCache(o.cache_dir).path(
      remote::sha256_hex(client.body(r)))));
  std::vector<remote::ChatRequest> second{request(1), request(2), request(3)};
  client.complete(second);
  EXPECT_EQ(s.fake.n_chat_requests(), 3u) << "the second run sent requests";
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(second[i].from_cache);
    EXPECT_EQ(second[i].answer, first[i].answer);
  }
  EXPECT_EQ(client.usage().cache_hits, 3);
  EXPECT_EQ(client.usage().requests, 0);
  // Another seed is another request.
  std::vector<remote::ChatRequest> other{request(4)};
  client.complete(other);
  EXPECT_EQ(s.fake.n_chat_requests(), 4u);
  // The key is in no cache file.
  for (const auto& e : std::filesystem::recursive_directory_iterator(o.cache_dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str().find("sk-test-never-on-disk-1234"), std::string::npos) << e.path();
  }
  ::unsetenv("SENSECF_TEST_REMOTE_KEY3");
}

TEST(RemoteClient, OfflineAnswersFromTheCacheOrSaysWhatIsMissing) {
  test::TempDir dir;
  Server s;
  auto o = options(s.http);
  o.cache_dir = dir.file("cache");
  std::vector<remote::ChatRequest> first{request(1)};
  remote::Client(o).complete(first);
  o.offline = true;
  remote::Client offline(o);
  std::vector<remote::ChatRequest> same{request(1)};
  offline.complete(same);
  EXPECT_EQ(same[0].answer, kEcho);
  std::vector<remote::ChatRequest> missing{request(1), request(9)};
  try {
    offline.complete(missing);
    FAIL() << "offline with a missing answer must throw";
  } catch (const PermanentError& e) {
    EXPECT_NE(std::string(e.what()).find("request 2 of 2 is not in the cache"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.fake.n_chat_requests(), 1u);
}

TEST(RemoteClient, ACorruptCacheEntryIsAMissNotACrash) {
  test::TempDir dir;
  Server s;
  auto o = options(s.http);
  o.cache_dir = dir.file("cache");
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request(1)};
  client.complete(rs);
  const std::string file = remote::ResponseCache(o.cache_dir).path(remote::sha256_hex(client.body(rs[0])));
  std::ofstream(file, std::ios::trunc) << "{\"request\": {\"model\": \"x\"}, \"respo";
  std::vector<remote::ChatRequest> again{request(1)};
  client.complete(again);
  EXPECT_FALSE(again[0].from_cache);
  EXPECT_EQ(again[0].answer, kEcho);
  EXPECT_EQ(s.fake.n_chat_requests(), 2u);
  std::vector<remote::ChatRequest> third{request(1)};
  client.complete(third);  // rewritten whole
  EXPECT_TRUE(third[0].from_cache);
}

TEST(RemoteClient, NoMoreThanMaxConcurrencyRequestsAreInFlight) {
  testing::FakeOpenAi fake;
  std::atomic<int> in_flight{0}, most{0};
  testing::LoopbackHttpServer http([&](const testing::HttpRequest& r) {
    const int now = ++in_flight;
    for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    --in_flight;
    return fake.answer(r);
  });
  auto o = options(http);
  o.max_concurrency = 3;
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs;
  for (int i = 0; i < 12; ++i) rs.push_back(request(static_cast<std::uint64_t>(i)));
  const auto t = Clock::now();
  client.complete(rs);
  EXPECT_EQ(most.load(), 3);
  EXPECT_GE(since(t), 4 * 0.06 * 0.9);  // 12 requests, 3 at a time
  for (const auto& r : rs) EXPECT_EQ(r.answer, kEcho);
}

TEST(RemoteClient, TheRequestRateLimitSpacesRequests) {
  Server s;
  auto o = options(s.http);
  o.max_concurrency = 8;
  o.requests_per_minute = 600;  // one every 0.1 s
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs;
  for (int i = 0; i < 6; ++i) rs.push_back(request(static_cast<std::uint64_t>(i)));
  const auto t = Clock::now();
  client.complete(rs);
  EXPECT_GE(since(t), 0.45);
  EXPECT_LT(since(t), 2.0);
}

TEST(RemoteClient, TheTokenRateLimitHoldsBackWhatTheBucketCannotPay) {
  Server s;
  auto o = options(s.http);
  o.max_concurrency = 4;
  o.tokens_per_minute = 60000;  // 1000 tokens/s; a request costs ~body/4 + max_tokens
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs;
  for (int i = 0; i < 4; ++i) rs.push_back(request(static_cast<std::uint64_t>(i)));
  rs[0].max_tokens = 61000;  // the first overdraws the minute's bucket by ~1,000 tokens
  const auto t = Clock::now();
  client.complete(rs);
  EXPECT_GE(since(t), 1.0);  // ~1 s to repay, then the others' ~600 tokens
  EXPECT_LT(since(t), 4.0);
}

TEST(RemoteClient, BadOptionsNameTheirKey) {
  remote::RemoteOptions o;
  o.model_name = "m";
  o.base_url = "ftp://x";
  EXPECT_THROW(remote::validate(o), UsageError);
  o.base_url = "http://127.0.0.1:1/v1";
  o.max_concurrency = 0;
  try {
    remote::validate(o);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("lm.max_concurrency"), std::string::npos);
  }
  o.max_concurrency = 1;
  o.offline = true;
  EXPECT_THROW(remote::validate(o), UsageError);  // offline needs a cache
}

TEST(RemoteClient, ARefusedConnectionIsRetriedThenReported) {
  int port = 0;
  {
    testing::LoopbackHttpServer gone([](const testing::HttpRequest&) { return testing::HttpReply{}; });
    port = gone.port();
  }
  remote::RemoteOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  o.model_name = "m";
  o.api_key_env = "SENSECF_TEST_NO_SUCH_KEY";
  o.max_retries = 2;
  o.retry_base = 0.01;
  o.retry_max = 0.02;
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request()};
  client.complete(rs);
  EXPECT_NE(rs[0].error.find("after 3 attempts"), std::string::npos) << rs[0].error;
  EXPECT_NE(rs[0].error.find("onnect"), std::string::npos) << rs[0].error;
}

// HTTPS for real: the fake server behind a TLS-terminating proxy
// (support/tls_proxy.py, Python's ssl) with a self-signed certificate made
// here by the openssl CLI. Untrusted: the run stops with a TLS error that
// points at lm.ca_bundle. Trusted through lm.ca_bundle: answers as over HTTP.
TEST(RemoteClient, HttpsVerifiesTheCertificateAndTrustsACaBundle) {
  test::TempDir dir;
  const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
  const auto made = test::run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                                      "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert +
                                      " 2>&1");
  if (made.exit_code != 0) GTEST_SKIP() << "the openssl CLI could not make a certificate: " << made.output;
  Server s;
  const std::string port_file = dir.file("port");
  const std::string proxy = std::string(SENSECF_TEST_SOURCE_DIR) + "/support/tls_proxy.py";
  const std::string command = "/usr/bin/python3 " + proxy + " --cert " + cert + " --key " + key + " --target " +
                              std::to_string(s.http.port()) + " --port-file " + port_file;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  struct Kill {
    pid_t pid;
    ~Kill() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } kill_proxy{pid};
  for (int i = 0; i < 200 && !std::filesystem::exists(port_file); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_TRUE(std::filesystem::exists(port_file)) << "the TLS proxy did not start: " << command;
  std::string port;
  std::ifstream(port_file) >> port;

  auto o = options(s.http);
  o.base_url = "https://127.0.0.1:" + port + "/v1";
  {
    remote::Client client(o);
    std::vector<remote::ChatRequest> rs{request()};
    try {
      client.complete(rs);
      FAIL() << "a self-signed certificate must not be trusted";
    } catch (const PermanentError& e) {
      EXPECT_NE(std::string(e.what()).find("TLS"), std::string::npos) << e.what();
      EXPECT_NE(e.hint().find("lm.ca_bundle"), std::string::npos) << e.hint();
    }
    EXPECT_EQ(s.fake.n_chat_requests(), 0u) << "nothing may be sent over an unverified connection";
  }
  o.ca_bundle = cert;
  remote::Client client(o);
  std::vector<remote::ChatRequest> rs{request(1), request(2)};
  client.complete(rs);
  for (const auto& r : rs) {
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.answer, kEcho);
  }
  EXPECT_EQ(s.fake.n_chat_requests(), 2u);
}

}  // namespace
}  // namespace sensecf
