// The options of a remote LLM (remote/client.h), keys lm.*: where the
// OpenAI-compatible server is, which of its models, where the API key is, and
// how hard to push it (timeouts, retries, rate limits, concurrency), with the
// response cache. None of them holds the key itself.
#pragma once

#include <string>

namespace sensecf {
class Options;
}

namespace sensecf::remote {

struct RemoteOptions {
  std::string base_url;                        // lm.base_url, e.g. https://api.openai.com/v1
  std::string model_name;                      // lm.model_name, the server's name for the model
  std::string api_key_env = "OPENAI_API_KEY";  // lm.api_key_env: the variable holding the key (unset: no key sent)
  std::string ca_bundle;                       // lm.ca_bundle: extra CA certificates (PEM) to trust
  double timeout = 120.0;                      // lm.timeout: seconds per attempt, connect to last byte
  double connect_timeout = 10.0;
  int max_retries = 6;                         // lm.max_retries: attempts after the first
  double retry_base = 1.0;                     // lm.retry_base: backoff k waits U(0, min(max, base * 2^k)) s
  double retry_max = 60.0;                     // lm.retry_max (a server's Retry-After may ask for longer)
  int max_concurrency = 4;                     // lm.max_concurrency: requests in flight per rank
  double requests_per_minute = 0;              // lm.rpm (0: no limit)
  double tokens_per_minute = 0;                // lm.tpm (0: no limit; prompt estimate + max_tokens charged)
  std::string cache_dir;                       // lm.cache_dir ("": no cache)
  bool offline = false;                        // lm.offline: answers from the cache only, never a request
  double price_in = 0, price_out = 0;          // lm.price_in / lm.price_out: USD per million tokens
};
// Throws sensecf::UsageError naming the lm.* key of the first bad value.
void validate(const RemoteOptions& options);

// Declares the lm.* keys of RemoteOptions. lm.base_url and lm.model_name (they
// name the model, and are hashed) only with_endpoint: a sweep names its remote
// models in sweep.llm_models instead. The rest changes how answers are
// fetched, not which, and is not hashed: a resumed sweep may tune it.
void declare_options(Options& options, RemoteOptions& remote, bool with_endpoint);

}  // namespace sensecf::remote
