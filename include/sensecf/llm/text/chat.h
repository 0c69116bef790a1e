// Chat templates as code: a conversation -> token ids, for the two model
// families sensecf runs. The templates' own markers (<|start_header_id|>,
// <|eot_id|>, <s>, </s>) are emitted as special ids; message content is encoded
// as plain text, so a user who writes "<|eot_id|>" cannot end a turn.
//   Llama-3.1 (HF tokenizer_config.json template, plain-chat path):
//     <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n
//     Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n{system}<|eot_id|>
//     then per message <|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>
//     and with add_generation_prompt <|start_header_id|>assistant<|end_header_id|>\n\n
//     (the system block is always there, as in the HF template).
//   Mistral / BioMistral:
//     <s>[INST] {user} [/INST]{assistant}</s>[INST] {user} [/INST]...
//     a system message is prepended to the first user message ("{system}\n\n{user}");
//     roles must alternate user/assistant.
// Not here: tool calls, images, Jinja. The text is what transformers'
// apply_chat_template renders; see docs/tokenizers.md for how ids are formed.
#pragma once

#include <string>
#include <vector>

#include "sensecf/llm/text/tokenizer.h"

namespace sensecf::llm {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatTemplate { kLlama3, kMistral };

// Parses "llama3" / "mistral"; throws sensecf::UsageError otherwise.
ChatTemplate chat_template_from_name(const std::string& name);
// The template that fits a tokenizer: llama3 if it has <|start_header_id|>, else mistral.
ChatTemplate guess_chat_template(const Tokenizer& tokenizer);

struct ChatOptions {
  bool add_generation_prompt = true;        // end with the assistant header (Llama) — Mistral needs none
  std::string date_string = "26 Jul 2024";  // Llama-3.1's "Today Date:"
};

// The ids of a conversation. Throws sensecf::Error when the tokenizer lacks a
// marker the template needs or the roles do not fit the template.
std::vector<int> apply_chat_template(const Tokenizer& tokenizer, ChatTemplate which,
                                     const std::vector<ChatMessage>& messages, const ChatOptions& options = {});
// The same conversation as text (for logs and for comparing with transformers).
std::string render_chat_template(ChatTemplate which, const std::vector<ChatMessage>& messages,
                                 const ChatOptions& options = {});

}  // namespace sensecf::llm
