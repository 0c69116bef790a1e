// Byte-level BPE training: a tokenizer fitted to a corpus, for the tiny models
// sensecf makes itself (the quickstart's LLM, llm/train/pretrain.h). The
// layout is Llama-3's (the 256 byte tokens, the Llama-3 split regex, then the
// learned merges, then <|begin_of_text|>, <|end_of_text|>, <|start_header_id|>,
// <|end_header_id|>, <|eot_id|> as specials), so Tokenizer::load reads it like
// any Hugging Face tokenizer.json.
//
// Training as huggingface/tokenizers' BpeTrainer does it: words are the
// pre-tokenizer's pieces with their counts; each round merges the most
// frequent adjacent pair (ties: the lexicographically smallest pair, so the
// result is deterministic), until `max_merges` or no pair occurs twice.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sensecf::llm {

// The merges (raw bytes, left and right) learned from `texts`, in rank order.
std::vector<std::pair<std::string, std::string>> train_bpe_merges(const std::vector<std::string>& texts,
                                                                  int max_merges);
// A Llama-3-layout byte-level BPE tokenizer.json with these merges.
std::string byte_level_bpe_json(const std::vector<std::pair<std::string, std::string>>& merges);

}  // namespace sensecf::llm
