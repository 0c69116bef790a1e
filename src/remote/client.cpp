// The OpenAI-compatible chat client (see remote/client.h).
#include "sensecf/remote/client.h"

#include <curl/curl.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

#include "sensecf/core/error.h"
#include "sensecf/remote/hash.h"

namespace sensecf::remote {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kMaxRetryAfter = 600.0;  // seconds

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw Error("libcurl: curl_global_init failed");
  });
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Retry-After: seconds (RFC 9110 allows an HTTP date too); -1 when absent.
std::size_t read_header(char* data, std::size_t size, std::size_t n, void* user) {
  const std::string line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name == "retry-after") {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t\r\n") + 1);
      double seconds = -1;
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (end && end != value.c_str() && *end == '\0' && v >= 0) {
        seconds = v;
      } else {
        const time_t when = curl_getdate(value.c_str(), nullptr);
        if (when > 0) seconds = std::max(0.0, std::difftime(when, std::time(nullptr)));
      }
      *static_cast<double*>(user) = seconds;
    }
  }
  return size * n;
}

// One HTTP attempt's outcome.
struct Attempt {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  double retry_after = -1;
  std::string curl_error;
};

bool retryable_transport(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
      return true;
    default:
      return false;
  }
}

bool retryable_status(long s) { return s == 408 || s == 409 || s == 429 || s >= 500; }
bool fatal_status(long s) { return s == 401 || s == 403 || s == 404; }

// The server's own words from an OpenAI-style error body, else the body's start.
std::string server_message(const std::string& body) {
  try {
    const auto j = nlohmann::json::parse(body);
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
    if (j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>();  // vLLM, FastAPI
  } catch (const nlohmann::json::exception&) {
  }
  std::string s = body.substr(0, 200);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.empty() ? "(empty body)" : s;
}

}  // namespace

void validate(const RemoteOptions& o) {
  if (o.base_url.rfind("http://", 0) != 0 && o.base_url.rfind("https://", 0) != 0)
    throw UsageError("lm.base_url must start with http:// or https://, got '" + o.base_url + "'",
                     "e.g. https://api.openai.com/v1, or http://localhost:8000/v1 for a vLLM server");
  if (o.model_name.empty())
    throw UsageError("lm.model_name is empty", "name the model as the server knows it, e.g. gpt-4o");
  if (o.api_key_env.empty()) throw UsageError("lm.api_key_env is empty", "the default is OPENAI_API_KEY");
  if (!(o.timeout > 0))
    throw UsageError(fmt::format("lm.timeout must be > 0 seconds, got {}", o.timeout),
                     "e.g. --lm.timeout 120 (the default)");
  if (!(o.connect_timeout > 0))
    throw UsageError(fmt::format("the connect timeout must be > 0 seconds, got {}", o.connect_timeout));
  if (o.max_retries < 0)
    throw UsageError(fmt::format("lm.max_retries must be >= 0, got {}", o.max_retries),
                     "e.g. --lm.max_retries 6 (the default), or 0 for no retries");
  if (!(o.retry_base >= 0) || !(o.retry_max >= o.retry_base))
    throw UsageError(
        fmt::format("lm.retry_base ({}) must be >= 0 and <= lm.retry_max ({})", o.retry_base, o.retry_max),
        "the defaults are --lm.retry_base 1 and --lm.retry_max 60 (seconds)");
  if (o.max_concurrency < 1)
    throw UsageError(fmt::format("lm.max_concurrency must be >= 1, got {}", o.max_concurrency),
                     "e.g. --lm.max_concurrency 4 (the default)");
  if (!(o.requests_per_minute >= 0) || !(o.tokens_per_minute >= 0))
    throw UsageError(fmt::format("lm.rpm and lm.tpm must be >= 0 (0: no limit), got {} and {}",
                                 o.requests_per_minute, o.tokens_per_minute),
                     "give the server's rate limits, e.g. --lm.rpm 500 --lm.tpm 200000, or 0 for none");
  if (!(o.price_in >= 0) || !(o.price_out >= 0))
    throw UsageError(
        fmt::format("lm.price_in and lm.price_out must be >= 0, got {} and {}", o.price_in, o.price_out),
        "USD per million tokens, e.g. --lm.price_in 2.5 --lm.price_out 10, or 0 to not count cost");
  if (o.offline && o.cache_dir.empty())
    throw UsageError("lm.offline needs a response cache", "set lm.cache_dir to the directory of earlier answers");
}

// Rate limits shared by a client's workers, by reservation: each request
// reserves its start time under the lock and sleeps outside it.
//   requests: one start every 60 / rpm seconds
//   tokens:   a bucket of one minute's tokens, refilled at tpm / 60 per
//             second; a request takes its estimate, and waits while the
//             bucket is in debt
struct Client::Limiter {
  std::mutex mutex;
  double rpm = 0, tpm = 0;
  Clock::time_point next_request = Clock::now();
  double bucket = 0;
  Clock::time_point filled = Clock::now();

  Limiter(double r, double t) : rpm(r), tpm(t), bucket(t) {}

  // How long to wait before sending a request of `tokens` tokens.
  double reserve(double tokens) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto now = Clock::now();
    double wait = 0;
    if (rpm > 0) {
      if (next_request < now) next_request = now;
      wait = std::chrono::duration<double>(next_request - now).count();
      next_request += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(60.0 / rpm));
    }
    if (tpm > 0) {
      bucket = std::min(tpm, bucket + tpm / 60.0 * std::chrono::duration<double>(now - filled).count());
      filled = now;
      bucket -= tokens;
      if (bucket < 0) wait = std::max(wait, -bucket / (tpm / 60.0));
    }
    return wait;
  }
};

struct Client::Worker {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  std::mt19937_64 jitter{std::random_device{}()};
  ~Worker() {
    if (curl) curl_easy_cleanup(curl);
    if (headers) curl_slist_free_all(headers);
  }
};

Client::Client(RemoteOptions options) : options_(std::move(options)) {
  validate(options_);
  global_init();
  if (const char* key = std::getenv(options_.api_key_env.c_str())) api_key_ = key;
  if (api_key_.empty() && options_.base_url.rfind("https://", 0) == 0)
    spdlog::warn("remote: ${} is not set; requests to {} go without an API key", options_.api_key_env,
                 options_.base_url);
  if (!options_.cache_dir.empty()) cache_ = std::make_unique<ResponseCache>(options_.cache_dir);
  limiter_ = std::make_unique<Limiter>(options_.requests_per_minute, options_.tokens_per_minute);
}

Client::~Client() = default;

std::string Client::endpoint() const {
  std::string url = options_.base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  const std::string tail = "/chat/completions";
  if (url.size() >= tail.size() && url.compare(url.size() - tail.size(), tail.size(), tail) == 0) return url;
  return url + tail;
}

std::string Client::body(const ChatRequest& r) const {
  nlohmann::json j;
  j["model"] = options_.model_name;
  j["messages"] = nlohmann::json::array();
  for (const auto& m : r.messages) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
  j["temperature"] = r.temperature;
  j["top_p"] = r.top_p;
  j["max_tokens"] = r.max_tokens;
  j["seed"] = r.seed;
  if (!r.stop.empty()) j["stop"] = r.stop;
  if (!r.json_schema.is_null())
    j["response_format"] = {{"type", "json_schema"},
                            {"json_schema", {{"name", "counterfactual"}, {"strict", true}, {"schema", r.json_schema}}}};
  return j.dump();
}

Usage Client::usage() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return usage_;
}

std::string Client::scrub(std::string text) const {
  if (api_key_.size() < 4) return text;
  for (auto at = text.find(api_key_); at != std::string::npos; at = text.find(api_key_, at))
    text.replace(at, api_key_.size(), "***");
  return text;
}

namespace {

// Thrown out of a worker when the server refuses the client itself.
struct Fatal {
  std::string message, hint;
  bool permanent = true;  // the same request would fail the same way (PermanentError)
};

// The answer in a 200 response; "" with `why` set when it has none.
std::string answer_of(const nlohmann::json& response, std::string& why) {
  if (!response.is_object() || !response.contains("choices") || !response["choices"].is_array() ||
      response["choices"].empty()) {
    why = "the response has no choices";
    return "";
  }
  const auto& choice = response["choices"][0];
  if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object()) {
    why = "the response's first choice has no message";
    return "";
  }
  const auto& message = choice["message"];
  if (message.contains("content") && message["content"].is_string()) return message["content"].get<std::string>();
  if (message.contains("refusal") && message["refusal"].is_string())
    why = "the model refused: " + message["refusal"].get<std::string>();
  else
    why = "the response's message has no text content";
  return "";
}

void read_usage(const nlohmann::json& response, ChatRequest& r) {
  if (!response.contains("usage") || !response["usage"].is_object()) return;
  const auto& u = response["usage"];
  if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number()) r.prompt_tokens = u["prompt_tokens"].get<long>();
  if (u.contains("completion_tokens") && u["completion_tokens"].is_number())
    r.completion_tokens = u["completion_tokens"].get<long>();
}

}  // namespace

void Client::run_one(Worker& w, ChatRequest& r, const std::string& body, const std::string& key) {
  if (!w.curl) {
    w.curl = curl_easy_init();
    if (!w.curl) throw Fatal{"libcurl: curl_easy_init failed", "", false};
    w.headers = curl_slist_append(w.headers, "Content-Type: application/json");
    w.headers = curl_slist_append(w.headers, "Expect:");  // no 100-continue round trip
    if (!api_key_.empty()) w.headers = curl_slist_append(w.headers, ("Authorization: Bearer " + api_key_).c_str());
    curl_easy_setopt(w.curl, CURLOPT_URL, endpoint().c_str());
    curl_easy_setopt(w.curl, CURLOPT_HTTPHEADER, w.headers);
    curl_easy_setopt(w.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w.curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout * 1000));
    curl_easy_setopt(w.curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout * 1000));
    curl_easy_setopt(w.curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(w.curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_bundle.empty()) curl_easy_setopt(w.curl, CURLOPT_CAINFO, options_.ca_bundle.c_str());
    curl_easy_setopt(w.curl, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(w.curl, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(w.curl, CURLOPT_USERAGENT, "sensecf");
  }
  const std::string where = fmt::format("{} (model {})", endpoint(), options_.model_name);
  const double tokens = static_cast<double>(body.size()) / 4.0 + r.max_tokens;
  std::string last;
  for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
    if (const double wait = limiter_->reserve(tokens); wait > 0)
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    Attempt a;
    curl_easy_setopt(w.curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(w.curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(w.curl, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(w.curl, CURLOPT_HEADERDATA, &a.retry_after);
    char error_buffer[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(w.curl, CURLOPT_ERRORBUFFER, error_buffer);
    a.code = curl_easy_perform(w.curl);
    if (a.code == CURLE_OK) curl_easy_getinfo(w.curl, CURLINFO_RESPONSE_CODE, &a.status);
    a.curl_error = error_buffer[0] ? error_buffer : curl_easy_strerror(a.code);
    ++r.attempts;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++usage_.requests;
      if (attempt > 0) ++usage_.retries;
    }

    bool retry = false;
    if (a.code != CURLE_OK) {
      last = scrub(fmt::format("{} (curl error {})", a.curl_error, static_cast<int>(a.code)));
      if (a.code == CURLE_PEER_FAILED_VERIFICATION || a.code == CURLE_SSL_CACERT_BADFILE ||
          a.code == CURLE_SSL_CONNECT_ERROR)
        throw Fatal{"remote: TLS with " + where + " failed: " + last,
                    "the server's certificate is not trusted: add its CA (PEM) with lm.ca_bundle FILE"};
      if (a.code == CURLE_UNSUPPORTED_PROTOCOL || a.code == CURLE_URL_MALFORMAT)
        throw Fatal{"remote: " + where + ": " + last, "check lm.base_url"};
      retry = retryable_transport(a.code);
    } else if (a.status == 200) {
      try {
        const auto response = nlohmann::json::parse(a.body);
        std::string why;
        r.answer = answer_of(response, why);
        if (why.empty()) {
          read_usage(response, r);
          if (cache_) cache_->store(key, body, response);
          r.error.clear();
          return;
        }
        last = why;
        retry = why.rfind("the model refused", 0) != 0;
      } catch (const nlohmann::json::exception&) {
        last = fmt::format("HTTP 200 with a body that is not JSON ({} bytes: {})", a.body.size(),
                           scrub(server_message(a.body)));
        retry = true;
      }
    } else {
      last = scrub(fmt::format("HTTP {}: {}", a.status, server_message(a.body)));
      if (fatal_status(a.status)) {
        const std::string hint =
            a.status == 404 ? "check lm.base_url (it ends in /v1 for most servers) and lm.model_name"
            : api_key_.empty()
                ? "set the API key in $" + options_.api_key_env + " (or name another variable with lm.api_key_env)"
                : "check the key in $" + options_.api_key_env + " and its access to model " + options_.model_name;
        throw Fatal{"remote: " + where + " refused the request: " + last, hint};
      }
      retry = retryable_status(a.status);
    }
    if (!retry || attempt == options_.max_retries) break;
    // Full jitter (AWS architecture blog): U(0, min(max, base * 2^attempt));
    // a server's Retry-After is a floor (up to kMaxRetryAfter: a server asking
    // for more is treated as asking for that).
    const double cap = std::min(options_.retry_max, options_.retry_base * std::ldexp(1.0, attempt));
    double wait = std::uniform_real_distribution<double>(0.0, cap)(w.jitter);
    if (a.retry_after >= 0) wait = std::max(wait, std::min(a.retry_after, kMaxRetryAfter));
    spdlog::debug("remote: {}; retry {} of {} in {:.2f} s", last, attempt + 1, options_.max_retries, wait);
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  }
  r.answer.clear();
  r.error = fmt::format("{} after {} attempt{}: {}", where, r.attempts, r.attempts == 1 ? "" : "s", last);
}

void Client::complete(std::vector<ChatRequest>& requests) {
  std::lock_guard<std::mutex> one_at_a_time(complete_mutex_);
  const auto began = Clock::now();
  std::vector<std::size_t> misses;
  std::vector<std::string> bodies(requests.size()), keys(requests.size());
  Usage delta;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto& r = requests[i];
    r.answer.clear();
    r.error.clear();
    r.from_cache = false;
    r.attempts = 0;
    r.prompt_tokens = r.completion_tokens = 0;
    bodies[i] = body(r);
    keys[i] = sha256_hex(bodies[i]);
    if (cache_) {
      if (auto response = cache_->find(keys[i], bodies[i])) {
        std::string why;
        r.answer = answer_of(*response, why);
        if (why.empty()) {
          r.from_cache = true;
          ++delta.cache_hits;
          ++delta.answers;
          continue;
        }
      }
    }
    if (options_.offline)
      throw PermanentError(fmt::format("remote: offline (lm.offline) and request {} of {} is not in the cache {}", i + 1,
                              requests.size(), options_.cache_dir),
                  "run once with lm.offline false to fetch the missing answers, or point lm.cache_dir at the run's "
                  "llm-cache directory");
    misses.push_back(i);
  }

  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex fatal_mutex;
  std::optional<Fatal> fatal;
  const std::size_t n_threads = std::min<std::size_t>(static_cast<std::size_t>(options_.max_concurrency), misses.size());
  while (workers_.size() < n_threads) workers_.push_back(std::make_unique<Worker>());
  auto work = [&](Worker& w) {
    for (;;) {
      if (stop) return;
      const std::size_t k = next++;
      if (k >= misses.size()) return;
      auto& r = requests[misses[k]];
      try {
        run_one(w, r, bodies[misses[k]], keys[misses[k]]);
      } catch (Fatal& f) {
        std::lock_guard<std::mutex> lock(fatal_mutex);
        if (!fatal) fatal = std::move(f);
        stop = true;
        return;
      } catch (const std::exception& e) {  // the cache's write errors
        std::lock_guard<std::mutex> lock(fatal_mutex);
        if (!fatal) fatal = Fatal{e.what(), "", false};
        stop = true;
        return;
      }
    }
  };
  if (n_threads == 1) {
    work(*workers_[0]);
  } else if (n_threads > 1) {
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < n_threads; ++t) threads.emplace_back(work, std::ref(*workers_[t]));
    for (auto& t : threads) t.join();
  }
  for (std::size_t i : misses) {
    const auto& r = requests[i];
    if (!r.error.empty()) {
      ++delta.failures;
    } else if (r.attempts > 0) {
      ++delta.answers;
      delta.prompt_tokens += r.prompt_tokens;
      delta.completion_tokens += r.completion_tokens;
    }
  }
  delta.cost_usd = (static_cast<double>(delta.prompt_tokens) * options_.price_in +
                    static_cast<double>(delta.completion_tokens) * options_.price_out) /
                   1e6;
  delta.seconds = seconds_since(began);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    usage_ += delta;  // requests and retries went into usage_ as they were sent (delta's are 0)
  }
  if (fatal && fatal->permanent) throw PermanentError(fatal->message, fatal->hint);
  if (fatal) throw Error(fatal->message, fatal->hint);
}

}  // namespace sensecf::remote
