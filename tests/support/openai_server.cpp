// The fake OpenAI endpoint (see openai_server.h).
#include "openai_server.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>
#include <utility>

#include "sensecf/core/error.h"
#include "sensecf/remote/hash.h"

namespace sensecf::testing {
namespace {

constexpr const char* kChatPath = "/v1/chat/completions";
constexpr const char* kModelsPath = "/v1/models";
constexpr const char* kFixedIntro = "Fixed Features: Do not modify these features: ";
constexpr const char* kInstanceIntro = "Now consider the following instance where the model predicted label";
constexpr const char* kCannotHelp = "I cannot help.";
constexpr const char* kProse =
    "To flip the prediction, the person would need to sleep a little longer and move a little more during the day; "
    "the other features can stay as they are.";
constexpr std::size_t kLongFillerBytes = 200 * 1024;

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + sep.size();
  }
}

// The value as the answer format writes it: at most 2 decimals, trailing zeros
// trimmed, no "-0".
std::string format_number(double v) {
  double r = std::round(v * 100.0) / 100.0;
  if (r == 0) r = 0.0;
  char text[64];
  std::snprintf(text, sizeof text, "%.2f", r);
  std::string s = text;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(v);
}

// "awake_pct (%)" -> "awake_pct"
std::string name_of(const std::string& label) {
  const std::size_t open = label.rfind(" (");
  if (open == std::string::npos || label.back() != ')') return label;
  return label.substr(0, open);
}

// A message's text: a string, or the text parts of a content array.
std::string content_text(const nlohmann::json& message) {
  if (!message.is_object()) return {};
  const auto it = message.find("content");
  if (it == message.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  std::string text;
  if (it->is_array())
    for (const auto& part : *it)
      if (part.is_object() && part.contains("text") && part["text"].is_string())
        text += part["text"].get<std::string>();
  return text;
}

std::size_t quarter_up(std::size_t n) { return (n + 3) / 4; }

nlohmann::json error_json(const std::string& message, const std::string& type, const std::string& code) {
  nlohmann::json error = {{"message", message}, {"type", type}, {"param", nullptr}};
  error["code"] = code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code);
  return {{"error", error}};
}

HttpReply json_reply(int status, const nlohmann::json& body) {
  return HttpReply{status, {{"Content-Type", "application/json"}}, body.dump()};
}

std::string long_filler() {
  const std::string sentence = "This sentence only pads the answer far beyond any sensible length. ";
  std::string filler;
  filler.reserve(kLongFillerBytes + sentence.size());
  while (filler.size() < kLongFillerBytes) filler += sentence;
  return filler;
}

}  // namespace

std::vector<Fault> parse_fault_script(const std::string& script) {
  std::vector<Fault> out;
  if (trim(script).empty()) return out;
  for (const std::string& raw : split(script, ",")) {
    std::string item = trim(raw);
    std::size_t repeats = 1;
    const std::size_t x = item.rfind('x');
    if (x != std::string::npos && x + 1 < item.size() &&
        item.find_first_not_of("0123456789", x + 1) == std::string::npos) {
      repeats = std::stoul(item.substr(x + 1));
      item = item.substr(0, x);
      if (repeats == 0)
        throw UsageError("fault script: '" + trim(raw) + "' repeats 0 times", "xN takes N >= 1, e.g. 500x3");
    }
    const std::size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    const std::string arg = colon == std::string::npos ? std::string() : item.substr(colon + 1);
    Fault fault;
    double seconds = 0;
    if (name == "ok" && colon == std::string::npos) {
      fault.kind = Fault::Kind::kOk;
    } else if (name == "429") {
      fault.kind = Fault::Kind::kRateLimit;
      if (colon != std::string::npos) {
        if (!parse_number(arg, seconds) || seconds < 0)
          throw UsageError("fault script: '" + trim(raw) + "' has Retry-After '" + arg + "', not seconds >= 0",
                           "e.g. 429:0 or 429:2");
        fault.retry_after = arg;
      }
    } else if (name == "500" && colon == std::string::npos) {
      fault.kind = Fault::Kind::kServerError;
    } else if (name == "503" && colon == std::string::npos) {
      fault.kind = Fault::Kind::kUnavailable;
    } else if (name == "timeout") {
      fault.kind = Fault::Kind::kTimeout;
      if (!parse_number(arg, seconds) || seconds < 0 || seconds != std::floor(seconds))
        throw UsageError("fault script: '" + trim(raw) + "' needs a sleep in whole milliseconds",
                         "e.g. timeout:3000");
      fault.timeout_ms = static_cast<int>(seconds);
    } else if (name == "drop" && colon == std::string::npos) {
      fault.kind = Fault::Kind::kDrop;
    } else if (name == "malformed" && colon == std::string::npos) {
      fault.kind = Fault::Kind::kMalformed;
    } else if (name == "noblock" && colon == std::string::npos) {
      fault.kind = Fault::Kind::kNoBlock;
    } else if (name == "long" && colon == std::string::npos) {
      fault.kind = Fault::Kind::kLong;
    } else {
      throw UsageError("fault script: unknown item '" + trim(raw) + "' in '" + script + "'",
                       "items: ok, 429[:seconds], 500, 503, timeout:<ms>, drop, malformed, noblock, long; "
                       "each optionally xN");
    }
    out.insert(out.end(), repeats, fault);
  }
  return out;
}

AnswerMode parse_answer_mode(const std::string& name) {
  if (name == "echo") return AnswerMode::kEcho;
  if (name == "noblock") return AnswerMode::kNoBlock;
  if (name == "long") return AnswerMode::kLong;
  if (name == "json") return AnswerMode::kJson;
  throw UsageError("fake OpenAI: unknown answer mode '" + name + "'", "one of: echo, noblock, long, json");
}

std::string FakeOpenAi::echo_answer(const std::string& prompt, double factor, bool as_json) {
  std::set<std::string> fixed;
  const std::size_t fixed_at = prompt.find(kFixedIntro);
  if (fixed_at != std::string::npos) {
    const std::size_t start = fixed_at + std::string(kFixedIntro).size();
    std::string list = prompt.substr(start, prompt.find('\n', start) - start);
    list = trim(list);
    if (!list.empty() && list.back() == '.') list.pop_back();
    if (list != "none")
      for (const std::string& label : split(list, ", ")) fixed.insert(trim(label));
  }

  const std::size_t instance_at = prompt.find(kInstanceIntro);
  if (instance_at == std::string::npos) return kCannotHelp;
  std::size_t line_start = prompt.find('\n', instance_at);
  std::string block = "<new>\n";
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  std::size_t n_lines = 0;
  while (line_start != std::string::npos) {
    ++line_start;
    const std::size_t line_end = prompt.find('\n', line_start);
    std::string line = prompt.substr(line_start, line_end == std::string::npos ? std::string::npos : line_end - line_start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) break;
    line_start = line_end;
    const std::size_t colon = line.find(": ");
    if (line.rfind("- ", 0) != 0 || colon == std::string::npos) continue;
    const std::string label = line.substr(2, colon - 2);
    std::string value = trim(line.substr(colon + 2));
    double v = 0;
    const bool numeric = parse_number(value, v);
    if (numeric && !fixed.count(label)) value = format_number(v * factor);
    block += "- " + label + ": " + value + "\n";
    if (numeric && parse_number(value, v))
      object[name_of(label)] = v;
    else
      object[name_of(label)] = value;
    ++n_lines;
  }
  if (n_lines == 0) return kCannotHelp;
  return as_json ? object.dump() : block + "</new>";
}

FakeOpenAi::FakeOpenAi(FakeOpenAiOptions options) : options_(std::move(options)) {
  const std::vector<Fault> faults = parse_fault_script(options_.faults);
  faults_.assign(faults.begin(), faults.end());
  if (!options_.log_path.empty()) {
    log_.open(options_.log_path, std::ios::app);
    if (!log_) throw Error("fake OpenAI: cannot open the request log '" + options_.log_path + "' for appending");
  }
}

LoopbackHttpServer::Handler FakeOpenAi::handler() {
  return [this](const HttpRequest& request) { return answer(request); };
}

void FakeOpenAi::add_faults(const std::string& script) {
  const std::vector<Fault> faults = parse_fault_script(script);
  std::lock_guard<std::mutex> lock(mutex_);
  faults_.insert(faults_.end(), faults.begin(), faults.end());
}

void FakeOpenAi::set_faults(const std::string& script) {
  const std::vector<Fault> faults = parse_fault_script(script);
  std::lock_guard<std::mutex> lock(mutex_);
  faults_.assign(faults.begin(), faults.end());
}

std::size_t FakeOpenAi::faults_left() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return faults_.size();
}

std::size_t FakeOpenAi::n_chat_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return n_chat_requests_;
}

std::map<int, std::size_t> FakeOpenAi::status_counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_counts_;
}

std::size_t FakeOpenAi::count(int status) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = status_counts_.find(status);
  return it == status_counts_.end() ? 0 : it->second;
}

nlohmann::json FakeOpenAi::last_request() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_request_;
}

HttpReply FakeOpenAi::answer(const HttpRequest& request) {
  const std::string path = request.path.substr(0, request.path.find('?'));
  HttpReply reply;
  if (path == kChatPath && request.method == "POST") {
    reply = chat(request);
  } else if (path == kChatPath) {
    reply = json_reply(405, error_json("Method " + request.method + " is not allowed for " + path + "; use POST.",
                                       "invalid_request_error", "method_not_allowed"));
  } else if (path == kModelsPath && request.method == "GET") {
    nlohmann::json model = {{"id", options_.model}, {"object", "model"}, {"created", 0}, {"owned_by", "sensecf"}};
    reply = json_reply(200, {{"object", "list"}, {"data", nlohmann::json::array({model})}});
  } else {
    reply = json_reply(404, error_json("Unknown request URL: " + request.method + " " + request.path +
                                           ". Please check the URL for typos.",
                                       "invalid_request_error", "unknown_url"));
  }
  reply.delay_ms += options_.delay_ms;
  return reply;
}

HttpReply FakeOpenAi::chat(const HttpRequest& request) {
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  std::size_t n = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    n = ++n_chat_requests_;
    last_request_ = body.is_discarded() ? nlohmann::json() : body;
  }

  if (!options_.api_key.empty()) {
    const auto auth = request.headers.find("authorization");
    if (auth == request.headers.end() || auth->second != "Bearer " + options_.api_key)
      return finish(request, json_reply(401, error_json("Incorrect API key provided", "invalid_request_error",
                                                        "invalid_api_key")));
  }
  if (body.is_discarded() || !body.is_object())
    return finish(request, json_reply(400, error_json("We could not parse the JSON body of your request.",
                                                      "invalid_request_error", "")));
  const auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array() || messages->empty())
    return finish(request, json_reply(400, error_json("'messages' is a required property and must be a non-empty array",
                                                      "invalid_request_error", "")));

  Fault fault;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!faults_.empty()) {
      fault = faults_.front();
      faults_.pop_front();
    }
  }
  switch (fault.kind) {
    case Fault::Kind::kRateLimit: {
      HttpReply reply = json_reply(429, error_json("Rate limit reached for requests. Please try again in " +
                                                       fault.retry_after + "s.",
                                                   "requests", "rate_limit_exceeded"));
      reply.headers.emplace_back("Retry-After", fault.retry_after);
      return finish(request, std::move(reply));
    }
    case Fault::Kind::kServerError:
      return finish(request, json_reply(500, error_json("The server had an error while processing your request.",
                                                        "server_error", "")));
    case Fault::Kind::kUnavailable:
      return finish(request, json_reply(503, error_json("The engine is currently overloaded, please try again later.",
                                                        "server_error", "")));
    case Fault::Kind::kMalformed:
      return finish(request, HttpReply{200, {{"Content-Type", "application/json"}}, R"({"choices": [)"});
    default:
      break;
  }

  std::string prompt;
  std::size_t prompt_chars = 0;
  for (const auto& message : *messages) {
    const std::string text = content_text(message);
    prompt_chars += text.size();
    if (message.is_object() && message.value("role", "") == "user") prompt = text;
  }
  AnswerMode mode = options_.answer;
  if (fault.kind == Fault::Kind::kNoBlock) mode = AnswerMode::kNoBlock;
  if (fault.kind == Fault::Kind::kLong) mode = AnswerMode::kLong;
  std::string content;
  switch (mode) {
    case AnswerMode::kEcho: content = echo_answer(prompt, options_.factor); break;
    case AnswerMode::kNoBlock: content = kProse; break;
    case AnswerMode::kLong: content = echo_answer(prompt, options_.factor) + "\n\n" + long_filler(); break;
    case AnswerMode::kJson: content = echo_answer(prompt, options_.factor, /*as_json=*/true); break;
  }
  const std::size_t prompt_tokens = quarter_up(prompt_chars);
  const std::size_t completion_tokens = quarter_up(content.size());
  const auto model = body.find("model");
  nlohmann::json completion = {
      {"id", "chatcmpl-" + std::to_string(n)},
      {"object", "chat.completion"},
      {"created", static_cast<long long>(std::time(nullptr))},
      {"model", model != body.end() && model->is_string() ? model->get<std::string>() : options_.model},
      {"choices", nlohmann::json::array({{{"index", 0},
                                          {"message", {{"role", "assistant"}, {"content", content}}},
                                          {"finish_reason", "stop"}}})},
      {"usage",
       {{"prompt_tokens", prompt_tokens},
        {"completion_tokens", completion_tokens},
        {"total_tokens", prompt_tokens + completion_tokens}}}};
  HttpReply reply = json_reply(200, completion);
  if (fault.kind == Fault::Kind::kTimeout) reply.delay_ms = fault.timeout_ms;
  if (fault.kind == Fault::Kind::kDrop) reply.drop_after = static_cast<long>(reply.body.size() / 2);
  return finish(request, std::move(reply));
}

HttpReply FakeOpenAi::finish(const HttpRequest& request, HttpReply reply) {
  const std::string hash = log_.is_open() ? remote::sha256_hex(request.body) : std::string();
  std::lock_guard<std::mutex> lock(mutex_);
  ++status_counts_[reply.status];
  if (log_.is_open()) log_ << hash << ' ' << reply.status << std::endl;  // flushed: a killed run keeps its lines
  return reply;
}

}  // namespace sensecf::testing
