// Fine-tuning data: a JSONL file of examples, each turned into token ids and
// the number of leading prompt tokens (the loss covers the completion only).
//
// One JSON object per line (blank lines are skipped), either
//   {"prompt": "...", "completion": "..."}
//       plain text: BOS (when the tokenizer has one) + prompt + completion + EOS,
//       for base and tiny models without a chat template;
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//       rendered with the model's chat template (text/chat.h); the last message
//       is the assistant's answer and is the completion: the prompt is the
//       conversation before it with the generation prompt, the completion is
//       the rest of the rendered conversation (the answer and its end marker).
// Every malformed line is an error naming file:line and what was expected; an
// example whose prompt leaves no room for a completion token within
// max_length is an error too (nothing is silently dropped). A completion that
// does not fit is cut at max_length, and the cut is counted.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sensecf/llm/text/tokenizer.h"

namespace sensecf::llm {

struct TrainExample {
  std::vector<int> ids;         // prompt + completion, at most max_length
  std::size_t prompt_len = 0;   // ids[prompt_len..] are the completion (loss) tokens
  std::string where;            // "file:line", for messages
  std::size_t n_completion() const { return ids.size() - prompt_len; }
};

struct TrainData {
  std::vector<TrainExample> examples;
  std::size_t n_truncated = 0;  // completions cut at max_length
  std::string chat_template;    // "llama3" | "mistral" when a line had messages, else ""
};

// Reads `path` (JSONL, see above). `max_length` bounds prompt + completion.
TrainData read_train_jsonl(const std::string& path, const Tokenizer& tokenizer, std::size_t max_length);

}  // namespace sensecf::llm
