// A tiny Llama-architecture model trained from scratch on a corpus, every
// parameter trained: the "pretrained" base that the quickstart fine-tunes,
// since no real checkpoint can be downloaded. It knows the corpus's text (the
// format of the rows, their values) and nothing else; see the README for
// what such a model does and does not show.
//
// Writes a Hugging Face model directory: tokenizer.json (byte-level BPE fitted
// to the corpus, text/bpe_train.h), config.json, model.safetensors, and
// pretrain_curve.csv (step, loss). The directory appears whole (written
// beside it, then renamed), so an interrupted run leaves no half model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sensecf::llm {

struct PretrainOptions {
  std::string out_dir;
  int merges = 1000;                 // BPE merges learned from the corpus
  std::int64_t hidden_size = 64;     // the model: Llama, llama3 RoPE, grouped-query attention
  std::int64_t intermediate_size = 192;
  std::int64_t layers = 2;
  std::int64_t heads = 4, kv_heads = 2;
  int epochs = 1;
  std::int64_t max_steps = 0;        // > 0: stop after this many steps
  int batch_size = 8;
  double lr = 3e-3;                  // AdamW, linear warmup (5% of the steps) then cosine decay
  double weight_decay = 0.01;
  std::size_t max_length = 1024;     // tokens per document (longer ones are cut)
  std::uint64_t seed = 1;
};

struct PretrainResult {
  std::int64_t steps = 0;
  double first_loss = 0, last_loss = 0;  // mean loss of the first and the last 10 steps
  std::int64_t vocab_size = 0, parameters = 0, tokens = 0;
  double seconds = 0;
};

// Trains on `documents` (each BOS + text + EOS; the loss covers every token).
// `stop_requested` is polled after each step: when it returns true, nothing is
// written and a sensecf::Error says so. Throws for an empty corpus.
PretrainResult pretrain_tiny_llama(const std::vector<std::string>& documents, const PretrainOptions& options,
                                   const std::function<bool()>& stop_requested = {});

}  // namespace sensecf::llm
