// The loopback HTTP server and the fake OpenAI endpoint of tests/support,
// driven by libcurl itself (the library the remote client uses): keep-alive,
// Connection: close, Expect: 100-continue, chunked bodies, dropped replies,
// prompt shutdown with open connections, throughput; the fake's echo answer on
// a real SenseCF prompt, its fault script, API key check, request log and the
// openai_test_server executable.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/prompt.h"
#include "sensecf/remote/hash.h"
#include "support/http_server.h"
#include "support/openai_server.h"
#include "test_util.h"

namespace sensecf::testing {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct CurlResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  long n_connects = 0;  // new connections this transfer opened
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names
};

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::size_t append_header(char* data, std::size_t size, std::size_t n, void* out) {
  const std::string line(data, size * n);
  const std::size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * n;
}

// One curl easy handle: its connection cache lives as long as the object.
class Curl {
 public:
  Curl() : handle_(curl_easy_init()) {}
  ~Curl() { curl_easy_cleanup(handle_); }
  Curl(const Curl&) = delete;
  Curl& operator=(const Curl&) = delete;

  // POST when body is given, else GET.
  CurlResult request(const std::string& url, const std::string* body = nullptr,
                     const std::vector<std::string>& headers = {}, long timeout_ms = 5000) {
    CurlResult r;
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_reset(handle_);
    curl_easy_setopt(handle_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(handle_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(handle_, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(handle_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle_, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(handle_, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(handle_, CURLOPT_HEADERFUNCTION, append_header);
    curl_easy_setopt(handle_, CURLOPT_HEADERDATA, &r.headers);
    if (body) {
      curl_easy_setopt(handle_, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(handle_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    r.code = curl_easy_perform(handle_);
    curl_easy_getinfo(handle_, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(handle_, CURLINFO_NUM_CONNECTS, &r.n_connects);
    curl_slist_free_all(list);
    return r;
  }

  CURL* handle() { return handle_; }

 private:
  CURL* handle_;
};

HttpReply echo_body(const HttpRequest& request) {
  return HttpReply{200, {{"Content-Type", "text/plain"}}, request.method + " " + request.path + " " + request.body};
}

// ---------------------------------------------------------------- the server

TEST(LoopbackServer, KeepAliveReusesOneConnection) {
  LoopbackHttpServer server(echo_body);
  Curl curl;
  const std::string body = "hello";
  const CurlResult first = curl.request(server.base_url() + "/a", &body);
  ASSERT_EQ(first.code, CURLE_OK) << curl_easy_strerror(first.code);
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "POST /a hello");
  EXPECT_EQ(first.n_connects, 1);
  const CurlResult second = curl.request(server.base_url() + "/b?q=1");
  ASSERT_EQ(second.code, CURLE_OK);
  EXPECT_EQ(second.body, "GET /b?q=1 ");
  EXPECT_EQ(second.n_connects, 0) << "the second request should reuse the first connection";
  EXPECT_EQ(server.connections(), 1u);
  EXPECT_EQ(server.requests(), 2u);
}

TEST(LoopbackServer, HonoursConnectionClose) {
  LoopbackHttpServer server(echo_body);
  Curl curl;
  const CurlResult first = curl.request(server.base_url() + "/", nullptr, {"Connection: close"});
  ASSERT_EQ(first.code, CURLE_OK);
  EXPECT_EQ(first.headers.at("connection"), "close");
  const CurlResult second = curl.request(server.base_url() + "/");
  ASSERT_EQ(second.code, CURLE_OK);
  EXPECT_EQ(second.n_connects, 1);
  EXPECT_EQ(server.connections(), 2u);
}

TEST(LoopbackServer, HeadersAndExpectContinue) {
  HttpRequest seen;
  LoopbackHttpServer server([&](const HttpRequest& r) {
    seen = r;
    return HttpReply{201, {{"X-Size", std::to_string(r.body.size())}}, ""};
  });
  const std::string body(200 * 1024, 'z');
  Curl curl;
  const auto start = Clock::now();
  const CurlResult r = curl.request(server.base_url() + "/big", &body, {"Expect: 100-continue", "X-Token: Abc "});
  ASSERT_EQ(r.code, CURLE_OK);
  // Without our interim 100, curl would wait its Expect timeout (1 s) first.
  EXPECT_LT(seconds_since(start), 0.8);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers.at("x-size"), std::to_string(body.size()));
  EXPECT_EQ(seen.body, body);
  EXPECT_EQ(seen.headers.at("expect"), "100-continue");
  EXPECT_EQ(seen.headers.at("x-token"), "Abc");
}

std::size_t read_chunks(char* out, std::size_t size, std::size_t n, void* state) {
  int& left = *static_cast<int*>(state);
  if (left == 0 || size * n < 5) return 0;
  --left;
  std::memcpy(out, "abcde", 5);
  return 5;
}

TEST(LoopbackServer, ChunkedRequestBody) {
  std::string seen;
  LoopbackHttpServer server([&](const HttpRequest& r) {
    seen = r.body;
    return HttpReply{};
  });
  Curl curl;
  int chunks = 3;
  curl_slist* headers = curl_slist_append(nullptr, "Transfer-Encoding: chunked");
  curl_easy_setopt(curl.handle(), CURLOPT_URL, (server.base_url() + "/").c_str());
  curl_easy_setopt(curl.handle(), CURLOPT_POST, 1L);
  curl_easy_setopt(curl.handle(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.handle(), CURLOPT_READFUNCTION, read_chunks);
  curl_easy_setopt(curl.handle(), CURLOPT_READDATA, &chunks);
  curl_easy_setopt(curl.handle(), CURLOPT_TIMEOUT_MS, 5000L);
  const CURLcode code = curl_easy_perform(curl.handle());
  curl_slist_free_all(headers);
  ASSERT_EQ(code, CURLE_OK) << curl_easy_strerror(code);
  EXPECT_EQ(seen, "abcdeabcdeabcde");
}

TEST(LoopbackServer, DropAfterGivesPartialFile) {
  LoopbackHttpServer server([](const HttpRequest&) {
    HttpReply reply{200, {}, std::string(1000, 'x')};
    reply.drop_after = 10;
    return reply;
  });
  Curl curl;
  const CurlResult r = curl.request(server.base_url() + "/");
  EXPECT_EQ(r.code, CURLE_PARTIAL_FILE) << curl_easy_strerror(r.code);
  EXPECT_EQ(r.body.size(), 10u);
}

TEST(LoopbackServer, HandlerExceptionIs500) {
  LoopbackHttpServer server([](const HttpRequest&) -> HttpReply { throw std::runtime_error("boom"); });
  Curl curl;
  const CurlResult r = curl.request(server.base_url() + "/");
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("boom"), std::string::npos);
}

TEST(LoopbackServer, StopIsPromptWithOpenConnections) {
  LoopbackHttpServer server([](const HttpRequest& r) {
    HttpReply reply;
    if (r.path == "/slow") reply.delay_ms = 10000;
    return reply;
  });
  Curl idle;  // holds a keep-alive connection open
  ASSERT_EQ(idle.request(server.base_url() + "/").code, CURLE_OK);
  std::atomic<CURLcode> slow_code{CURLE_OK};
  std::thread slow([&] {
    Curl curl;
    slow_code = curl.request(server.base_url() + "/slow", nullptr, {}, 20000).code;
  });
  while (server.requests() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const auto start = Clock::now();
  server.stop();
  EXPECT_LT(seconds_since(start), 0.5);
  slow.join();
  EXPECT_NE(slow_code.load(), CURLE_OK);
  EXPECT_LT(seconds_since(start), 1.0);
  server.stop();  // idempotent
}

TEST(LoopbackServer, SustainsThousandsOfRequestsPerSecond) {
  LoopbackHttpServer server(echo_body);
  constexpr int kThreads = 4, kPerThread = 500;
  std::atomic<int> n_ok{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      Curl curl;
      const std::string body = R"({"x":1})";
      for (int i = 0; i < kPerThread; ++i)
        if (curl.request(server.base_url() + "/v1/chat/completions", &body).status == 200) ++n_ok;
    });
  for (auto& t : threads) t.join();
  const double elapsed = seconds_since(start);
  EXPECT_EQ(n_ok.load(), kThreads * kPerThread);
  EXPECT_EQ(server.connections(), static_cast<std::size_t>(kThreads));
  const double rate = kThreads * kPerThread / elapsed;
  std::printf("loopback server: %.0f requests/s (%d threads, keep-alive)\n", rate, kThreads);
  EXPECT_GT(rate, 500.0) << "requests/s over " << elapsed << " s";
}

// ---------------------------------------------------------------- the fake OpenAI

data::Feature continuous(const std::string& name, const std::string& unit, bool immutable = false) {
  data::Feature f;
  f.name = name;
  f.unit = unit;
  f.immutable = immutable;
  return f;
}

data::Feature categorical(const std::string& name, std::vector<std::string> categories, bool immutable) {
  data::Feature f;
  f.name = name;
  f.kind = data::FeatureKind::kCategorical;
  f.categories = std::move(categories);
  f.immutable = immutable;
  return f;
}

// A schema with mutable and fixed, continuous and categorical features.
data::Schema small_schema() {
  data::Schema schema;
  schema.features = {continuous("sleep_hours", "h"), continuous("steps", "steps/day"), continuous("age", "years", true),
                     categorical("gender", {"female", "male"}, true), categorical("mood", {"calm", "tense"}, false),
                     continuous("hr_delta", "")};
  return schema;
}

std::string chat_body(const std::string& user, const std::string& model = "gpt-test") {
  nlohmann::json body = {{"model", model},
                         {"messages", {{{"role", "system"}, {"content", "You are an expert."}},
                                       {{"role", "user"}, {"content", user}}}},
                         {"temperature", 0.7},
                         {"seed", 42},
                         {"max_tokens", 256},
                         {"response_format", {{"type", "text"}}}};
  return body.dump();
}

TEST(FakeOpenAi, EchoesTheRealPrompt) {
  const data::Schema schema = small_schema();
  const std::vector<double> x = {7.25, 4500, 40, 1, 1, -2.5};
  const std::vector<double> example = {8, 9000, 40, 1, 0, 1};
  const llmcf::Prompt prompt = llmcf::build_prompt(schema, x.data(), 1, 0, {example.data()}, llmcf::PromptOptions{});
  // Mutable numbers times 0.8; fixed features and categories as they were.
  const std::vector<double> expected = {5.8, 3600, 40, 1, 1, -2};
  EXPECT_EQ(FakeOpenAi::echo_answer(prompt.user, 0.8), llmcf::format_answer(schema, expected.data()));
  EXPECT_EQ(FakeOpenAi::echo_answer(prompt.user, 0.8, /*as_json=*/true),
            R"({"sleep_hours":5.8,"steps":3600.0,"age":40.0,"gender":"male","mood":"tense","hr_delta":-2.0})");
  EXPECT_EQ(FakeOpenAi::echo_answer("What is the capital of France?", 0.8), "I cannot help.");
  EXPECT_EQ(FakeOpenAi::echo_answer("Now consider the following instance where the model predicted label 1:\n\n", 0.8),
            "I cannot help.");
}

TEST(FakeOpenAi, ChatCompletionRoundTrip) {
  FakeOpenAi fake;
  LoopbackHttpServer server(fake.handler());
  const std::string user =
      "Fixed Features: Do not modify these features: age (years).\n\n"
      "Now consider the following instance where the model predicted label 1 (high stress):\n"
      "- sleep_hours (h): 6.33\n- age (years): 40\n- gender: male\n\nInstruction: ...";
  const std::string body = chat_body(user);
  Curl curl;
  const CurlResult r = curl.request(server.base_url() + "/v1/chat/completions", &body);
  ASSERT_EQ(r.code, CURLE_OK);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  const nlohmann::json reply = nlohmann::json::parse(r.body);
  EXPECT_EQ(reply["id"], "chatcmpl-1");
  EXPECT_EQ(reply["object"], "chat.completion");
  EXPECT_EQ(reply["model"], "gpt-test");
  const std::string content = "<new>\n- sleep_hours (h): 5.06\n- age (years): 40\n- gender: male\n</new>";
  EXPECT_EQ(reply["choices"][0]["message"]["content"], content);
  EXPECT_EQ(reply["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(reply["choices"][0]["finish_reason"], "stop");
  const std::size_t prompt_tokens = (std::string("You are an expert.").size() + user.size() + 3) / 4;
  EXPECT_EQ(reply["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(reply["usage"]["completion_tokens"], (content.size() + 3) / 4);
  EXPECT_EQ(reply["usage"]["total_tokens"], prompt_tokens + (content.size() + 3) / 4);

  const nlohmann::json sent = fake.last_request();
  EXPECT_EQ(sent["model"], "gpt-test");
  EXPECT_EQ(sent["temperature"], 0.7);
  EXPECT_EQ(sent["seed"], 42);
  EXPECT_EQ(sent["max_tokens"], 256);
  EXPECT_EQ(sent["response_format"]["type"], "text");
  EXPECT_EQ(fake.n_chat_requests(), 1u);
  EXPECT_EQ(fake.count(200), 1u);
}

TEST(FakeOpenAi, ModelsAndUnknownPaths) {
  FakeOpenAiOptions options;
  options.model = "my-model";
  FakeOpenAi fake(options);
  LoopbackHttpServer server(fake.handler());
  Curl curl;
  const CurlResult models = curl.request(server.base_url() + "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(nlohmann::json::parse(models.body)["data"][0]["id"], "my-model");
  const CurlResult missing = curl.request(server.base_url() + "/v1/embeddings");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"]["code"], "unknown_url");
  const std::string bad = "{not json";
  EXPECT_EQ(curl.request(server.base_url() + "/v1/chat/completions", &bad).status, 400);
}

TEST(FakeOpenAi, ParsesFaultScripts) {
  const auto faults = parse_fault_script("429:0, 500x3,timeout:3000,drop,malformed,noblock,long,429,503,ok");
  ASSERT_EQ(faults.size(), 12u);
  EXPECT_EQ(faults[0].kind, Fault::Kind::kRateLimit);
  EXPECT_EQ(faults[0].retry_after, "0");
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(faults[i].kind, Fault::Kind::kServerError);
  EXPECT_EQ(faults[4].kind, Fault::Kind::kTimeout);
  EXPECT_EQ(faults[4].timeout_ms, 3000);
  EXPECT_EQ(faults[5].kind, Fault::Kind::kDrop);
  EXPECT_EQ(faults[6].kind, Fault::Kind::kMalformed);
  EXPECT_EQ(faults[7].kind, Fault::Kind::kNoBlock);
  EXPECT_EQ(faults[8].kind, Fault::Kind::kLong);
  EXPECT_EQ(faults[9].retry_after, "1");
  EXPECT_EQ(faults[10].kind, Fault::Kind::kUnavailable);
  EXPECT_EQ(faults[11].kind, Fault::Kind::kOk);
  EXPECT_TRUE(parse_fault_script("").empty());
  EXPECT_THROW_WITH(parse_fault_script("500,teapot"), UsageError, "unknown item 'teapot'");
  EXPECT_THROW_WITH(parse_fault_script("timeout"), UsageError, "whole milliseconds");
  EXPECT_THROW_WITH(parse_fault_script("500x0"), UsageError, "repeats 0 times");
  EXPECT_THROW_WITH(parse_fault_script("429:soon"), UsageError, "not seconds");
  EXPECT_THROW_WITH(parse_answer_mode("poem"), UsageError, "unknown answer mode");
}

TEST(FakeOpenAi, FaultScriptInOrder) {
  FakeOpenAiOptions options;
  options.faults = "429:0,429:0.2,500,503,drop,malformed,noblock,long,timeout:3000";
  FakeOpenAi fake(options);
  LoopbackHttpServer server(fake.handler());
  const std::string url = server.base_url() + "/v1/chat/completions";
  const std::string body = chat_body("Now consider the following instance where the model predicted label 1:\n"
                                     "- steps: 100\n\n");
  Curl curl;
  CurlResult r = curl.request(url, &body);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.headers.at("retry-after"), "0");
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "rate_limit_exceeded");
  r = curl.request(url, &body);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.headers.at("retry-after"), "0.2");
  EXPECT_EQ(curl.request(url, &body).status, 500);
  EXPECT_EQ(curl.request(url, &body).status, 503);

  r = curl.request(url, &body);
  EXPECT_EQ(r.code, CURLE_PARTIAL_FILE) << curl_easy_strerror(r.code);
  EXPECT_EQ(r.status, 200);

  r = curl.request(url, &body);
  ASSERT_EQ(r.code, CURLE_OK);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"choices": [)");
  EXPECT_TRUE(nlohmann::json::parse(r.body, nullptr, false).is_discarded());

  r = curl.request(url, &body);
  std::string content = nlohmann::json::parse(r.body)["choices"][0]["message"]["content"];
  EXPECT_EQ(content.find("<new>"), std::string::npos) << content;

  r = curl.request(url, &body);
  content = nlohmann::json::parse(r.body)["choices"][0]["message"]["content"];
  EXPECT_EQ(content.rfind("<new>\n- steps: 80\n</new>\n\n", 0), 0u);
  EXPECT_GT(content.size(), 200u * 1024);

  // The client's timeout fires first; the fault is used up all the same.
  const auto start = Clock::now();
  r = curl.request(url, &body, {}, 150);
  EXPECT_EQ(r.code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_LT(seconds_since(start), 1.0);
  EXPECT_EQ(fake.faults_left(), 0u);

  r = curl.request(url, &body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["choices"][0]["message"]["content"], "<new>\n- steps: 80\n</new>");
  EXPECT_EQ(fake.count(429), 2u);
  EXPECT_EQ(fake.count(200), 6u);  // drop, malformed, noblock, long, timeout, ok
  EXPECT_EQ(fake.n_chat_requests(), 10u);
  const auto stop_start = Clock::now();
  server.stop();  // the timed-out request's 3 s sleep does not hold it up
  EXPECT_LT(seconds_since(stop_start), 0.5);
}

TEST(FakeOpenAi, AnswerModesNoBlockAndJson) {
  const std::string body = chat_body("Fixed Features: Do not modify these features: none.\n\n"
                                     "Now consider the following instance where the model predicted label 1:\n"
                                     "- steps (steps/day): 100\n- gender: male\n\n");
  HttpRequest request{"POST", "/v1/chat/completions", {}, body};
  FakeOpenAiOptions options;
  options.answer = AnswerMode::kJson;
  options.factor = 0.5;
  FakeOpenAi json_fake(options);
  EXPECT_EQ(nlohmann::json::parse(json_fake.answer(request).body)["choices"][0]["message"]["content"],
            R"({"steps":50.0,"gender":"male"})");
  options.answer = parse_answer_mode("noblock");
  FakeOpenAi prose_fake(options);
  const std::string content =
      nlohmann::json::parse(prose_fake.answer(request).body)["choices"][0]["message"]["content"];
  EXPECT_EQ(content.find("<new>"), std::string::npos);
  options.delay_ms = 25;
  EXPECT_EQ(FakeOpenAi(options).answer(request).delay_ms, 25);
}

TEST(FakeOpenAi, ChecksTheApiKey) {
  FakeOpenAiOptions options;
  options.api_key = "sk-right";
  FakeOpenAi fake(options);
  LoopbackHttpServer server(fake.handler());
  const std::string url = server.base_url() + "/v1/chat/completions";
  const std::string body = chat_body("hi");
  Curl curl;
  for (const std::vector<std::string>& headers :
       {std::vector<std::string>{}, std::vector<std::string>{"Authorization: Bearer sk-wrong"}}) {
    const CurlResult r = curl.request(url, &body, headers);
    EXPECT_EQ(r.status, 401);
    const nlohmann::json error = nlohmann::json::parse(r.body)["error"];
    EXPECT_EQ(error["message"], "Incorrect API key provided");
    EXPECT_EQ(error["type"], "invalid_request_error");
    EXPECT_EQ(error["code"], "invalid_api_key");
  }
  const CurlResult r = curl.request(url, &body, {"Authorization: Bearer sk-right"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["choices"][0]["message"]["content"], "I cannot help.");
  EXPECT_EQ(fake.count(401), 2u);
}

TEST(FakeOpenAi, LogsBodyHashesAndStatuses) {
  test::TempDir dir;
  FakeOpenAiOptions options;
  options.log_path = dir.file("requests.log");
  options.faults = "ok,500";
  FakeOpenAi fake(options);
  LoopbackHttpServer server(fake.handler());
  const std::vector<std::string> bodies = {chat_body("one"), chat_body("two"), chat_body("three", "other")};
  Curl curl;
  for (const auto& body : bodies) curl.request(server.base_url() + "/v1/chat/completions", &body);
  curl.request(server.base_url() + "/v1/models");  // not a chat request: not logged
  std::ifstream log(options.log_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(log, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], remote::sha256_hex(bodies[0]) + " 200");
  EXPECT_EQ(lines[1], remote::sha256_hex(bodies[1]) + " 500");
  EXPECT_EQ(lines[2], remote::sha256_hex(bodies[2]) + " 200");
  EXPECT_EQ(fake.status_counts(), (std::map<int, std::size_t>{{200, 2}, {500, 1}}));
}

std::string server_executable() {
  const char* env = std::getenv("SENSECF_OPENAI_SERVER");
  return env && *env ? env : SENSECF_OPENAI_SERVER_PATH;
}

TEST(FakeOpenAi, ServerExecutableListensAndStopsOnSigterm) {
  test::TempDir dir;
  const std::string port_file = dir.file("port");
  const std::string exe = server_executable();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(exe.c_str(), exe.c_str(), "--port-file", port_file.c_str(), "--model", "m0", "--faults", "503",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto start = Clock::now();
  while (!std::filesystem::exists(port_file) && seconds_since(start) < 5)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  int port = 0;
  std::ifstream(port_file) >> port;
  ASSERT_GT(port, 0) << "no port file from " << exe;
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  Curl curl;
  EXPECT_EQ(nlohmann::json::parse(curl.request(base + "/v1/models").body)["data"][0]["id"], "m0");
  const std::string body = chat_body("hi");
  EXPECT_EQ(curl.request(base + "/v1/chat/completions", &body).status, 503);
  EXPECT_EQ(curl.request(base + "/v1/chat/completions", &body).status, 200);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(test::run_command(exe + " --faults teapot").exit_code, 2);
}

}  // namespace
}  // namespace sensecf::testing
