// The prompt of the SenseCF method (the paper's Fig. 4): role, task, definition,
// fixed features, optional few-shot examples, the instance, the instruction and
// the answer skeleton. Feature lines, examples and skeleton are written in the
// answer format of answer.h, so the model sees the exact text the parser reads.
//
// A Prompt is two strings: `system` (the role sentence) and `user` (the rest),
// for a chat template (llm/text/chat.h) or, joined by plain_text, for a model
// without one. choose_examples picks the few-shot rows from the training data.
//
// Not here: tokenisation, chat templates, decoding, parsing (parse.h). Torch-free.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sensecf/core/random.h"
#include "sensecf/data/dataset.h"

namespace sensecf::llmcf {

struct PromptOptions {
  int shots = 0;                        // few-shot examples (0: zero-shot)
  std::string shot_choice = "nearest";  // nearest | random (see choose_examples)
  std::string label1 = "high stress";   // what class 1 means
  std::string label0 = "moderate stress";
};

// Throws sensecf::UsageError for shots < 0, an unknown shot_choice or an empty
// class name.
void validate(const PromptOptions& options);

struct Prompt {
  std::string system;  // "You are an expert in generating counterfactual explanations ..."
  std::string user;    // task ... answer skeleton (ends with "</new>", no newline)
};

// The prompt for factual x (schema.size() values), which the model predicts as
// `predicted`, to become `desired` (each 0 or 1, different). `examples`: rows
// of class `desired` shown as few-shot examples (all of them, in order; empty:
// zero-shot, no examples section). Throws sensecf::Error for labels that are
// not 0/1 or equal.
Prompt build_prompt(const data::Schema& schema, const double* x, int predicted, int desired,
                    const std::vector<const double*>& examples, const PromptOptions& options);

// system + "\n\n" + user + "\n\n": the answer ("<new>...") follows.
std::string plain_text(const Prompt& prompt);

// "1 (high stress)"
std::string class_text(int label, const PromptOptions& options);

// Indices of up to k rows of train_x with train_y == desired (fewer when the
// class has fewer rows; none for k <= 0). Deterministic.
//   "nearest": the k rows nearest to x by cf::cf_distance, ties by row index,
//              nearest first. Rows whose immutable features all equal x's are
//              preferred: when the class has at least k of them, only those
//              are considered (examples of the same age, gender, medication and
//              subgroup show changes the instance can make).
//   "random":  k distinct rows of the class drawn with rng (Fisher-Yates
//              prefix), in draw order.
// Throws sensecf::UsageError for another choice, sensecf::Error when train_y
// and train_x disagree in size.
std::vector<std::size_t> choose_examples(const data::Schema& schema, const data::Matrix& train_x,
                                         const std::vector<int>& train_y, const double* x, int desired, int k,
                                         const std::string& choice, Rng& rng);

}  // namespace sensecf::llmcf
