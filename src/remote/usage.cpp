// A remote client's usage counters (see remote/client.h), apart from the
// client so that code which only reports usage (the LLM CF generator) links
// without libcurl.
#include <nlohmann/json.hpp>

#include "sensecf/remote/client.h"

namespace sensecf::remote {

Usage& Usage::operator+=(const Usage& o) {
  requests += o.requests;
  answers += o.answers;
  cache_hits += o.cache_hits;
  retries += o.retries;
  failures += o.failures;
  prompt_tokens += o.prompt_tokens;
  completion_tokens += o.completion_tokens;
  cost_usd += o.cost_usd;
  seconds += o.seconds;
  return *this;
}

nlohmann::json to_json(const Usage& u) {
  return {{"requests", u.requests},
          {"answers", u.answers},
          {"cache_hits", u.cache_hits},
          {"retries", u.retries},
          {"failures", u.failures},
          {"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"cost_usd", u.cost_usd},
          {"seconds", u.seconds}};
}

}  // namespace sensecf::remote
