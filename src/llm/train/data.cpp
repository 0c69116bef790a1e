// Fine-tuning examples from JSONL (see train/data.h).
#include "sensecf/llm/train/data.h"

#include <spdlog/fmt/fmt.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "sensecf/core/error.h"
#include "sensecf/llm/text/chat.h"

namespace sensecf::llm {
namespace {

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    throw Error(fmt::format("{}: \"{}\" must be a string", where, key),
                "each line is {\"prompt\": ..., \"completion\": ...} or {\"messages\": [...]}");
  }
  return it->get<std::string>();
}

TrainExample plain_example(const nlohmann::json& j, const Tokenizer& tokenizer, const std::string& where) {
  const std::string prompt = string_field(j, "prompt", where), completion = string_field(j, "completion", where);
  if (completion.empty())
    throw Error(where + ": \"completion\" is empty: there is nothing to learn",
                "give the answer to learn in \"completion\", or drop the line");
  TrainExample e;
  e.where = where;
  if (const auto bos = tokenizer.bos_id()) e.ids.push_back(*bos);
  const auto p = tokenizer.encode(prompt);
  e.ids.insert(e.ids.end(), p.begin(), p.end());
  e.prompt_len = e.ids.size();
  const auto c = tokenizer.encode(completion);
  e.ids.insert(e.ids.end(), c.begin(), c.end());
  const auto eos = tokenizer.eos_ids();
  if (!eos.empty()) e.ids.push_back(eos.front());
  return e;
}

TrainExample chat_example(const nlohmann::json& j, const Tokenizer& tokenizer, ChatTemplate which,
                          const std::string& where) {
  const auto& list = j.at("messages");
  if (!list.is_array() || list.empty())
    throw Error(where + ": \"messages\" must be a non-empty array",
                "e.g. {\"messages\": [{\"role\": \"user\", \"content\": ...}, {\"role\": \"assistant\", "
                "\"content\": ...}]}");
  std::vector<ChatMessage> messages;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = fmt::format("{} message {}", where, i + 1);
    if (!list[i].is_object())
      throw Error(at + ": expected an object {\"role\": ..., \"content\": ...}",
                  "each message is {\"role\": \"system\", \"user\" or \"assistant\", \"content\": \"...\"}");
    messages.push_back({string_field(list[i], "role", at), string_field(list[i], "content", at)});
  }
  if (messages.back().role != "assistant") {
    throw Error(fmt::format("{}: the last message is from '{}', expected 'assistant' (the answer to learn)",
                            where, messages.back().role),
                "end each conversation with the assistant message the model should learn to write");
  }
  ChatOptions with_prompt, without_prompt;
  without_prompt.add_generation_prompt = false;
  TrainExample e;
  e.where = where;
  try {
    e.ids = apply_chat_template(tokenizer, which, messages, without_prompt);
    const std::vector<ChatMessage> before(messages.begin(), messages.end() - 1);
    const auto prompt = apply_chat_template(tokenizer, which, before, with_prompt);
    if (prompt.size() >= e.ids.size() || !std::equal(prompt.begin(), prompt.end(), e.ids.begin())) {
      throw Error("the rendered conversation does not start with its rendered prompt",
                  "the chat template renders the earlier messages differently once the answer follows; write "
                  "the example as {\"prompt\": ..., \"completion\": ...} instead");
    }
    e.prompt_len = prompt.size();
  } catch (const Error& error) {
    throw Error(fmt::format("{}: {}", where, error.what()), error.hint());
  }
  return e;
}

}  // namespace

TrainData read_train_jsonl(const std::string& path, const Tokenizer& tokenizer, std::size_t max_length) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open training data '" + path + "'", "pass a JSONL file with --data");
  TrainData data;
  std::optional<ChatTemplate> chat;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path, n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}: not a JSON object: {}", where, e.what()), "one JSON object per line (JSONL)");
    }
    if (!j.is_object())
      throw Error(where + ": expected a JSON object, got " + std::string(j.type_name()),
                  "each line is {\"prompt\": ..., \"completion\": ...} or {\"messages\": [...]}");
    TrainExample e;
    if (j.contains("messages")) {
      if (!chat) {
        chat = guess_chat_template(tokenizer);
        data.chat_template = *chat == ChatTemplate::kLlama3 ? "llama3" : "mistral";
      }
      e = chat_example(j, tokenizer, *chat, where);
    } else {
      e = plain_example(j, tokenizer, where);
    }
    if (e.prompt_len >= max_length) {
      throw Error(fmt::format("{}: the prompt has {} tokens, max_length is {}: no completion token fits", where,
                              e.prompt_len, max_length),
                  "raise --max-length or shorten the prompt");
    }
    if (e.ids.size() > max_length) {
      e.ids.resize(max_length);
      ++data.n_truncated;
    }
    data.examples.push_back(std::move(e));
  }
  if (data.examples.empty())
    throw Error("'" + path + "' holds no examples",
                "one JSON object per line: {\"prompt\": ..., \"completion\": ...} or {\"messages\": [...]}");
  return data;
}

}  // namespace sensecf::llm
