// Chat templates (see chat.h). A conversation is first laid out as parts —
// special markers and text — exactly as the Jinja template renders it; runs of
// text between markers are then encoded as single segments, which is what
// Hugging Face does when it tokenises the rendered string (it splits on special
// tokens first). So ids == tokenizer(render(messages), add_special_tokens=False)
// for conversations whose content has no special-token text in it, and content
// that does stays plain text.
#include "sensecf/llm/text/chat.h"

#include "sensecf/core/error.h"

namespace sensecf::llm {
namespace {

struct Part {
  bool special;
  std::string text;  // the marker's token text, or plain text
};

// Python's str.strip() / Jinja's |trim for the ASCII and common Unicode spaces.
std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  const std::size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::vector<Part> llama3_parts(const std::vector<ChatMessage>& messages, const ChatOptions& options) {
  std::vector<Part> parts;
  std::size_t first = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = trim(messages[0].content);
    first = 1;
  }
  auto header = [&](const std::string& role) {
    parts.push_back({true, "<|start_header_id|>"});
    parts.push_back({false, role});
    parts.push_back({true, "<|end_header_id|>"});
  };
  parts.push_back({true, "<|begin_of_text|>"});
  header("system");
  parts.push_back({false, "\n\nCutting Knowledge Date: December 2023\nToday Date: " + options.date_string + "\n\n" + system});
  parts.push_back({true, "<|eot_id|>"});
  for (std::size_t k = first; k < messages.size(); ++k) {
    const ChatMessage& m = messages[k];
    if (m.role != "user" && m.role != "assistant" && m.role != "system") {
      throw Error("chat template llama3: message " + std::to_string(k) + " has role '" + m.role + "'",
                  "roles are system (first message only), user and assistant");
    }
    header(m.role);
    parts.push_back({false, "\n\n" + trim(m.content)});
    parts.push_back({true, "<|eot_id|>"});
  }
  if (options.add_generation_prompt) {
    header("assistant");
    parts.push_back({false, "\n\n"});
  }
  return parts;
}

std::vector<Part> mistral_parts(const std::vector<ChatMessage>& messages) {
  std::vector<Part> parts;
  parts.push_back({true, "<s>"});
  std::size_t first = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    first = 1;
  }
  for (std::size_t k = first; k < messages.size(); ++k) {
    const ChatMessage& m = messages[k];
    const bool expect_user = (k - first) % 2 == 0;
    if (m.role != (expect_user ? "user" : "assistant")) {
      throw Error("chat template mistral: message " + std::to_string(k) + " has role '" + m.role + "', expected " +
                      (expect_user ? "user" : "assistant"),
                  "conversation roles must alternate user/assistant/user/... (a system message may come first)");
    }
    if (expect_user) {
      const std::string content = (k == first && !system.empty()) ? system + "\n\n" + m.content : m.content;
      parts.push_back({false, "[INST] " + content + " [/INST]"});
    } else {
      parts.push_back({false, m.content});
      parts.push_back({true, "</s>"});
    }
  }
  return parts;
}

std::vector<Part> layout(ChatTemplate which, const std::vector<ChatMessage>& messages, const ChatOptions& options) {
  return which == ChatTemplate::kLlama3 ? llama3_parts(messages, options) : mistral_parts(messages);
}

}  // namespace

ChatTemplate chat_template_from_name(const std::string& name) {
  if (name == "llama3" || name == "llama-3" || name == "llama3.1") return ChatTemplate::kLlama3;
  if (name == "mistral" || name == "biomistral") return ChatTemplate::kMistral;
  throw UsageError("unknown chat template '" + name + "'", "use llama3 or mistral");
}

ChatTemplate guess_chat_template(const Tokenizer& tokenizer) {
  return tokenizer.token_id("<|start_header_id|>") ? ChatTemplate::kLlama3 : ChatTemplate::kMistral;
}

std::vector<int> apply_chat_template(const Tokenizer& tokenizer, ChatTemplate which,
                                     const std::vector<ChatMessage>& messages, const ChatOptions& options) {
  const std::vector<Part> parts = layout(which, messages, options);
  std::vector<int> ids;
  std::string text;  // pending run of text between markers
  auto flush = [&] {
    if (text.empty()) return;
    const std::vector<int> piece = tokenizer.encode(text, EncodeOptions{false, false});
    ids.insert(ids.end(), piece.begin(), piece.end());
    text.clear();
  };
  for (const Part& p : parts) {
    if (!p.special) {
      text += p.text;
      continue;
    }
    flush();
    const auto id = tokenizer.token_id(p.text);
    if (!id) {
      throw Error("chat template: the tokenizer has no token '" + p.text + "'",
                  which == ChatTemplate::kLlama3 ? "is this a Llama-3 tokenizer? try the mistral template"
                                                 : "is this a Llama-2/Mistral tokenizer? try the llama3 template");
    }
    ids.push_back(*id);
  }
  flush();
  return ids;
}

std::string render_chat_template(ChatTemplate which, const std::vector<ChatMessage>& messages,
                                 const ChatOptions& options) {
  std::string out;
  for (const Part& p : layout(which, messages, options)) out += p.text;
  return out;
}

}  // namespace sensecf::llm
