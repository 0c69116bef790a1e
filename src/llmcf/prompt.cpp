// The SenseCF prompt (see llmcf/prompt.h; text in docs/llm-counterfactuals.md).
#include "sensecf/llmcf/prompt.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <utility>

#include "sensecf/cf/metrics.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/llmcf/answer.h"

namespace sensecf::llmcf {
namespace {

constexpr const char* kRole =
    "You are an expert in generating counterfactual explanations to understand model predictions.";
constexpr const char* kDefinition =
    "Definition: A counterfactual explanation reveals what should have been different in an instance to "
    "observe a different outcome.";

void check_label(int label, const char* what) {
  if (label != 0 && label != 1) throw Error(fmt::format("prompt: {} label must be 0 or 1, got {}", what, label));
}

// The skeleton line of one feature: the value to fill in, or the factual value
// of a fixed feature.
std::string skeleton_line(const data::Feature& f, double factual) {
  if (f.immutable) return format_line(f, factual);
  if (f.is_categorical()) return "- " + feature_label(f) + ": <one of: " + join(f.categories, ", ") + ">\n";
  return "- " + feature_label(f) + ": <number>\n";
}

bool same_immutables(const data::Schema& schema, const double* a, const double* b) {
  for (std::size_t j = 0; j < schema.size(); ++j)
    if (schema.features[j].immutable && a[j] != b[j]) return false;
  return true;
}

}  // namespace

void validate(const PromptOptions& options) {
  if (options.shots < 0)
    throw UsageError(fmt::format("prompt shots must be >= 0, got {}", options.shots), "0 gives a zero-shot prompt");
  if (options.shot_choice != "nearest" && options.shot_choice != "random")
    throw UsageError(
        fmt::format("prompt shot choice must be 'nearest' or 'random', got '{}'", options.shot_choice),
        "set cf.llm_shot_choice = nearest (the default) or random");
  if (options.label0.empty() || options.label1.empty())
    throw UsageError("prompt class names must not be empty",
                     fmt::format("the defaults are '{}' and '{}'", PromptOptions{}.label0, PromptOptions{}.label1));
}

std::string class_text(int label, const PromptOptions& options) {
  return fmt::format("{} ({})", label, label == 1 ? options.label1 : options.label0);
}

Prompt build_prompt(const data::Schema& schema, const double* x, int predicted, int desired,
                    const std::vector<const double*>& examples, const PromptOptions& options) {
  check_label(predicted, "predicted");
  check_label(desired, "desired");
  if (predicted == desired)
    throw Error(fmt::format("prompt: predicted and desired label are both {}; a counterfactual flips the label",
                            predicted));
  const std::string from = class_text(predicted, options);
  const std::string to = class_text(desired, options);

  std::vector<std::string> fixed;
  for (const auto& f : schema.features)
    if (f.immutable) fixed.push_back(feature_label(f));

  std::string u;
  u += fmt::format(
      "Task: Given a structured tabular instance where a trained black-box model has predicted label = {}, the "
      "undesired outcome, generate a counterfactual explanation by minimally modifying the instance so that the "
      "predicted label flips to {}, the desired outcome.\n\n",
      from, to);
  u += std::string(kDefinition) + "\n\n";
  u += "Fixed Features: Do not modify these features: " + (fixed.empty() ? std::string("none") : join(fixed, ", ")) +
       ".\n\n";
  if (!examples.empty()) {
    u += fmt::format("Here are a few examples with desired outcome {}:\n\n", to);
    for (std::size_t e = 0; e < examples.size(); ++e)
      u += fmt::format("Example {}:\n{}\n\n", e + 1, format_answer(schema, examples[e]));
  }
  u += fmt::format("Now consider the following instance where the model predicted label {}:\n", from);
  for (std::size_t j = 0; j < schema.size(); ++j) u += format_line(schema.features[j], x[j]);
  u += "\n";
  u += fmt::format(
      "Instruction: Modify the instance minimally to flip the label from {} to {}. Only adjust features not "
      "listed under \"Fixed Features\"; they keep the values shown. Give every feature exactly once, in this "
      "order, with a plain number or category. Enclose your output within {} tags exactly as shown:\n\n",
      from, to, kOpenTag);
  u += std::string(kOpenTag) + "\n";
  for (std::size_t j = 0; j < schema.size(); ++j) u += skeleton_line(schema.features[j], x[j]);
  u += kCloseTag;
  return Prompt{kRole, std::move(u)};
}

std::string plain_text(const Prompt& prompt) { return prompt.system + "\n\n" + prompt.user + "\n\n"; }

std::vector<std::size_t> choose_examples(const data::Schema& schema, const data::Matrix& train_x,
                                         const std::vector<int>& train_y, const double* x, int desired, int k,
                                         const std::string& choice, Rng& rng) {
  if (choice != "nearest" && choice != "random")
    throw UsageError(fmt::format("prompt shot choice must be 'nearest' or 'random', got '{}'", choice),
                     "set cf.llm_shot_choice = nearest (the default) or random");
  if (train_y.size() != train_x.n_rows)
    throw Error(fmt::format("choose_examples: {} training rows but {} labels", train_x.n_rows, train_y.size()));
  if (train_x.n_rows > 0 && train_x.n_cols != schema.size())
    throw Error(fmt::format("choose_examples: training rows have {} columns, the schema {} features",
                            train_x.n_cols, schema.size()));
  std::vector<std::size_t> pool;
  for (std::size_t i = 0; i < train_y.size(); ++i)
    if (train_y[i] == desired) pool.push_back(i);
  if (k <= 0) return {};
  const std::size_t n = std::min(static_cast<std::size_t>(k), pool.size());

  if (choice == "random") {
    for (std::size_t i = 0; i < n; ++i) std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
    pool.resize(n);
    return pool;
  }
  std::vector<std::size_t> alike;
  for (std::size_t i : pool)
    if (same_immutables(schema, x, train_x.row(i))) alike.push_back(i);
  if (alike.size() >= n) pool = std::move(alike);
  std::vector<std::pair<double, std::size_t>> by_distance;
  by_distance.reserve(pool.size());
  for (std::size_t i : pool) by_distance.emplace_back(cf::cf_distance(schema, x, train_x.row(i)), i);
  std::partial_sort(by_distance.begin(), by_distance.begin() + static_cast<std::ptrdiff_t>(n), by_distance.end());
  std::vector<std::size_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = by_distance[i].second;
  return out;
}

}  // namespace sensecf::llmcf
