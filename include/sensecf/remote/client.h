// A client of OpenAI-compatible chat endpoints (POST <base_url>/chat/completions):
// OpenAI itself, vLLM, SGLang, llama.cpp's server. What the LLM CF generator
// (llmcf/) uses when a model is remote; it knows nothing of counterfactuals.
//
//   RemoteOptions  where and how: URL, model name, the environment variable
//                  holding the API key, TLS CA bundle, timeouts, retries,
//                  rate limits, concurrency, the response cache
//   ChatRequest    one conversation to complete (messages, sampling, seed,
//                  an optional JSON schema for structured output); the answer
//                  or the error comes back in it
//   Client         complete(requests): cache first, then at most
//                  max_concurrency requests in flight, each retried on 429,
//                  5xx, timeouts and broken connections with exponential
//                  backoff and full jitter (Retry-After honoured), under a
//                  request-rate and a token-rate limit. A request that still
//                  fails gets ChatRequest::error (the caller goes on); an
//                  answer the server refuses for every request (401, 403,
//                  404) throws sensecf::PermanentError at once.
//   Usage          requests sent, cache hits, retries, failures, tokens in and
//                  out, estimated cost: per task into the results file
//
// The API key is read from the environment at construction, sent only in the
// Authorization header and scrubbed from every message this client makes; it
// is never part of a cache key, a log line or an error.
//
// Torch-free; libcurl does the HTTP(S), TLS verification always on.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sensecf/remote/cache.h"
#include "sensecf/remote/options.h"

namespace sensecf::remote {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct ChatRequest {
  std::vector<ChatMessage> messages;
  double temperature = 0;
  double top_p = 1;
  int max_tokens = 256;
  std::uint64_t seed = 0;             // sent as "seed" (servers that honour it sample reproducibly)
  nlohmann::json json_schema;         // null: free text; else response_format json_schema (strict)
  std::vector<std::string> stop;

  // Filled by Client::complete.
  std::string answer;                 // the first choice's message content
  std::string error;                  // "" on success; else what went wrong, after the last retry
  bool from_cache = false;
  int attempts = 0;                   // HTTP requests sent for it
  long prompt_tokens = 0, completion_tokens = 0;  // the server's usage (0 when it reports none)
};

struct Usage {
  long long requests = 0;    // HTTP requests sent (retries included)
  long long answers = 0;     // requests answered (from the server or the cache)
  long long cache_hits = 0;
  long long retries = 0;
  long long failures = 0;    // requests given up on
  long long prompt_tokens = 0, completion_tokens = 0;  // of answers from the server (not the cache)
  double cost_usd = 0;       // those tokens at price_in / price_out
  double seconds = 0;        // wall time inside complete()
  Usage& operator+=(const Usage& o);
};
nlohmann::json to_json(const Usage& u);

class Client {
 public:
  // Reads the API key from options.api_key_env. Throws UsageError for bad
  // options.
  explicit Client(RemoteOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Completes every request (answer or error filled in); calls from several
  // threads run one after the other. Throws
  // sensecf::PermanentError when the server refuses the client itself (401,
  // 403, 404: a wrong key, URL or model name; an untrusted certificate) or when
  // offline and an answer is not cached; sensecf::Error when the cache cannot
  // be written.
  void complete(std::vector<ChatRequest>& requests);

  // The exact JSON body of a request (keys sorted; the cache key is its SHA-256).
  std::string body(const ChatRequest& request) const;

  Usage usage() const;    // since construction
  const RemoteOptions& options() const { return options_; }
  std::string endpoint() const;  // <base_url>/chat/completions

 private:
  struct Worker;
  void run_one(Worker& worker, ChatRequest& request, const std::string& body, const std::string& key);
  std::string scrub(std::string text) const;

  RemoteOptions options_;
  std::string api_key_;
  std::unique_ptr<ResponseCache> cache_;
  struct Limiter;
  std::unique_ptr<Limiter> limiter_;
  // One libcurl handle per concurrent request slot, kept across complete()
  // calls so their connections (and TLS sessions) are reused.
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex complete_mutex_;  // one complete() at a time
  mutable std::mutex mutex_;   // usage_
  Usage usage_;
};

}  // namespace sensecf::remote
