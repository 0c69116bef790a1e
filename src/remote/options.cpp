#include "sensecf/remote/options.h"

#include "sensecf/core/options.h"

namespace sensecf::remote {

void declare_options(Options& o, RemoteOptions& r, bool with_endpoint) {
  if (with_endpoint) {
    o.add("lm.base_url", &r.base_url,
          "remote LLM: the OpenAI-compatible server, e.g. https://api.openai.com/v1 or http://localhost:8000/v1 "
          "(set: the llm: method asks it instead of a local model)");
    o.add("lm.model_name", &r.model_name, "remote LLM: the server's name for the model, e.g. gpt-4o");
  }
  o.add("lm.api_key_env", &r.api_key_env,
        "remote LLM: the environment variable that holds the API key (the key itself is never an option)")
      .not_hashed();
  o.add("lm.ca_bundle", &r.ca_bundle, "remote LLM: extra CA certificates (PEM file) to trust for HTTPS")
      .not_hashed();
  o.add("lm.timeout", &r.timeout, "remote LLM: seconds per request attempt").not_hashed();
  o.add("lm.max_retries", &r.max_retries, "remote LLM: retries after a 429, 5xx, timeout or broken connection")
      .not_hashed();
  o.add("lm.retry_base", &r.retry_base, "remote LLM: first backoff bound in seconds (doubles per retry, full jitter)")
      .not_hashed();
  o.add("lm.retry_max", &r.retry_max, "remote LLM: longest wait between retries, seconds").not_hashed();
  o.add("lm.max_concurrency", &r.max_concurrency, "remote LLM: requests in flight per rank").not_hashed();
  o.add("lm.rpm", &r.requests_per_minute, "remote LLM: request rate limit per rank (0: none)").not_hashed();
  o.add("lm.tpm", &r.tokens_per_minute, "remote LLM: token rate limit per rank, prompt + max tokens (0: none)")
      .not_hashed();
  o.add("lm.cache_dir", &r.cache_dir,
        "remote LLM: the response cache (a sweep: <run dir>/llm-cache when empty; explain: none when empty)")
      .not_hashed();
  o.add("lm.offline", &r.offline, "remote LLM: answer from the response cache only, never send a request")
      .not_hashed();
  o.add("lm.price_in", &r.price_in, "remote LLM: USD per million prompt tokens (cost estimate)").not_hashed();
  o.add("lm.price_out", &r.price_out, "remote LLM: USD per million completion tokens (cost estimate)").not_hashed();
}

}  // namespace sensecf::remote
