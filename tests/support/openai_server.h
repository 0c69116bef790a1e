// A fake OpenAI-compatible endpoint on LoopbackHttpServer, for tests and
// benchmarks of the remote LLM client: POST /v1/chat/completions answers the
// SenseCF prompt (llmcf/prompt.h) with a counterfactual computed from the
// prompt itself, GET /v1/models lists the configured model, and a fault script
// makes the next requests fail in chosen ways (429 with Retry-After, 5xx,
// slow answers, dropped connections, truncated JSON, answers without a
// <new> block, overlong answers).
//
// The echo answer: the instance lines of the prompt ("- label: value" after
// "Now consider the following instance ..."), each numeric value of a feature
// not listed under "Fixed Features" multiplied by `factor`, written as the
// answer format writes numbers (at most 2 decimals, trailing zeros trimmed).
//
// Every chat request can be logged, one line each, flushed at once:
//     <sha256 of the exact body bytes> <status sent>
// so a test can match the requests a client sent against its cache keys.
//
// Deliberately not: streaming, tools, embeddings, token-exact usage counts
// (usage is characters / 4, rounded up). Test support only; not thread-hostile:
// one FakeOpenAi serves all of a server's connection threads.
#pragma once

#include <cstddef>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http_server.h"

namespace sensecf::testing {

// One scripted fault, consumed by one chat request.
struct Fault {
  enum class Kind { kOk, kRateLimit, kServerError, kUnavailable, kTimeout, kDrop, kMalformed, kNoBlock, kLong };
  Kind kind = Kind::kOk;
  std::string retry_after = "1";  // kRateLimit: the Retry-After header, as given
  int timeout_ms = 0;             // kTimeout: the sleep before a normal answer
};

// "429:0,500x3,timeout:3000,drop,malformed,noblock,long" -> 1 + 3 + 5 faults.
// Items: ok, 429[:seconds], 500, 503, timeout:<ms>, drop, malformed, noblock,
// long; each optionally followed by xN (N >= 1 repeats). Empty: no faults.
// Throws sensecf::UsageError naming the bad item.
std::vector<Fault> parse_fault_script(const std::string& script);

// The default answer of a request without a fault.
enum class AnswerMode { kEcho, kNoBlock, kLong, kJson };
// "echo" | "noblock" | "long" | "json"; throws sensecf::UsageError otherwise.
AnswerMode parse_answer_mode(const std::string& name);

struct FakeOpenAiOptions {
  std::string model = "fake-model";  // GET /v1/models lists it
  std::string api_key;               // expected bearer key; empty: not checked
  AnswerMode answer = AnswerMode::kEcho;
  double factor = 0.8;               // echo: the multiplier of mutable numeric values
  int delay_ms = 0;                  // added before every chat answer
  std::string faults;                // a fault script (parse_fault_script)
  std::string log_path;              // empty: no request log
};

class FakeOpenAi {
 public:
  explicit FakeOpenAi(FakeOpenAiOptions options = {});
  FakeOpenAi(const FakeOpenAi&) = delete;
  FakeOpenAi& operator=(const FakeOpenAi&) = delete;

  // The handler for LoopbackHttpServer; it refers to this object, which must
  // outlive the server (declare the FakeOpenAi first).
  LoopbackHttpServer::Handler handler();
  // Answers one request (what handler() calls); usable without a server.
  HttpReply answer(const HttpRequest& request);

  // Appends a fault script to the queue / replaces the queue.
  void add_faults(const std::string& script);
  void set_faults(const std::string& script);
  std::size_t faults_left() const;

  // Chat requests received (POST /v1/chat/completions), all statuses.
  std::size_t n_chat_requests() const;
  // Replies sent to chat requests, by status.
  std::map<int, std::size_t> status_counts() const;
  std::size_t count(int status) const;
  // The parsed body of the last chat request (null before the first, or when
  // it was not JSON).
  nlohmann::json last_request() const;

  // The echo answer to a prompt, or "I cannot help." when it has no instance
  // section. as_json: a JSON object {"feature name": value} instead of the
  // <new> block (names without their " (unit)").
  static std::string echo_answer(const std::string& prompt, double factor, bool as_json = false);

 private:
  HttpReply chat(const HttpRequest& request);
  HttpReply finish(const HttpRequest& request, HttpReply reply);

  FakeOpenAiOptions options_;
  mutable std::mutex mutex_;
  std::deque<Fault> faults_;
  std::size_t n_chat_requests_ = 0;
  std::map<int, std::size_t> status_counts_;
  nlohmann::json last_request_;
  std::ofstream log_;
};

}  // namespace sensecf::testing
