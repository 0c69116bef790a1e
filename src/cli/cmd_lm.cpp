// `sensecf lm <sub-command>`: the LLM stack on its own — tokenizers, tiny
// checkpoints, logits and generation (what the sweep's LLM tasks build on, and
// what the golden tests compare against Hugging Face).
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/llm/model.h"
#include "sensecf/llm/tiny.h"
#include "sensecf/llm/tokenizer.h"
#include "sensecf/store/h5file.h"

namespace sensecf::cli {
namespace {

int lm_init_tiny(const std::vector<std::string>& args) {
  LogOptions log;
  std::string family = "llama", out = "results/tiny-llama";
  unsigned long seed = 1;
  Options options("lm init-tiny",
                  "Write a random tiny Llama or Mistral checkpoint in the Hugging Face layout (config.json,\n"
                  "model.safetensors, tokenizer.json) for tests, benchmarks and the quickstart.");
  options.add("tiny.family", &family, "model family", "family").choices({"llama", "mistral"});
  options.add("tiny.out", &out, "output directory", "out");
  options.add("tiny.seed", &seed, "seed of the random weights", "seed");
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  llm::write_tiny_checkpoint(out, family, seed);
  spdlog::info("wrote a tiny {} checkpoint to {}", family, out);
  return 0;
}

struct ModelArgs {
  std::string model;
  llm::ModelOptions options;
  void declare(Options& o) {
    o.add("lm.model", &model, "Hugging Face model directory (config.json, *.safetensors, tokenizer.json)", "model");
    o.add("lm.device", &options.device, "cpu or cuda:N", "device");
    o.add("lm.dtype", &options.dtype, "weights and activations", "dtype")
        .choices({"auto", "float32", "bfloat16", "float16"});
    o.add_check([this] {
      if (model.empty()) throw UsageError("--model is required", "pass a model directory, e.g. one from `sensecf lm init-tiny`");
    });
  }
};

std::vector<int> parse_ids(const std::string& text) {
  std::vector<int> ids;
  for (const auto& part : split_list(text)) {
    try {
      ids.push_back(std::stoi(part));
    } catch (const std::exception&) {
      throw UsageError("--ids: '" + part + "' is not a token id", "give comma-separated integers");
    }
  }
  return ids;
}

int lm_logits(const std::vector<std::string>& args) {
  LogOptions log;
  ModelArgs m;
  std::string text, ids_text, out = "logits.h5";
  bool add_special = false;
  Options options("lm logits",
                  "Write the last layer's logits [T, V] of a text (tokenised exactly as `lm tokenize` does) to the\n"
                  "HDF5 dataset `logits`, with the ids in `input_ids`: the check against transformers.");
  m.declare(options);
  options.add("lm.text", &text, "input text", "text");
  options.add("lm.ids", &ids_text, "input token ids instead of --text (comma-separated)", "ids");
  options.add("lm.add_special", &add_special, "add the tokenizer's special tokens (BOS)", "add-special");
  options.add("lm.out", &out, "HDF5 output file", "out");
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  std::vector<int> ids;
  if (!ids_text.empty()) {
    ids = parse_ids(ids_text);
  } else {
    ids = llm::Tokenizer::load(m.model + "/tokenizer.json").encode(text, add_special);
  }
  if (ids.empty()) throw UsageError("no input tokens", "pass --text or --ids");
  const auto model = llm::CausalLM::load(m.model, m.options);
  const auto start = std::chrono::steady_clock::now();
  const auto logits = model->logits(ids);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto T = ids.size(), V = static_cast<std::size_t>(model->config().vocab_size);
  auto file = store::H5File::create(out);
  file.write_array("/logits", std::vector<double>(logits.begin(), logits.end()), {T, V});
  file.write_array("/input_ids", std::vector<long long>(ids.begin(), ids.end()), {T});
  file.flush();
  spdlog::info("logits [{}, {}] in {:.3f} s written to {}", T, V, s, out);
  return 0;
}

int lm_generate(const std::vector<std::string>& args) {
  LogOptions log;
  ModelArgs m;
  std::vector<std::string> prompts;
  llm::GenerationOptions g;
  std::string adapter;
  bool chat = false;
  unsigned long seed = 0;
  Options options("lm generate", "Generate continuations of one or more prompts (batched, left-padded).");
  m.declare(options);
  options.add("lm.prompt", &prompts, "prompt text(s); several are generated as one batch", "prompt");
  options.add("lm.max_new_tokens", &g.max_new_tokens, "new tokens at most", "max-new-tokens");
  options.add("lm.temperature", &g.temperature, "0: greedy", "temperature");
  options.add("lm.top_k", &g.top_k, "sample from the k most likely tokens (0: off)", "top-k");
  options.add("lm.top_p", &g.top_p, "nucleus sampling mass (1: off)", "top-p");
  options.add("lm.seed", &seed, "sampling seed", "seed");
  options.add("lm.stop", &g.stop_strings, "stop strings", "stop");
  options.add("lm.adapter", &adapter, "LoRA adapter directory (PEFT layout)", "adapter");
  options.add("lm.add_special", &chat, "add the tokenizer's special tokens (BOS) to each prompt", "add-special");
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  if (!adapter.empty())
    throw UsageError("--adapter: LoRA adapters are not supported yet", "run without --adapter (LoRA lands with fine-tuning)");
  if (prompts.empty()) throw UsageError("--prompt is required");
  g.seed = seed;
  const auto tokenizer = llm::Tokenizer::load(m.model + "/tokenizer.json");
  const auto model = llm::CausalLM::load(m.model, m.options);
  for (auto id : model->config().eos_token_ids) g.stop_ids.push_back(static_cast<int>(id));
  g.decode = [&tokenizer](const std::vector<int>& ids) { return tokenizer.decode(ids); };
  std::vector<std::vector<int>> batch;
  for (const auto& p : prompts) batch.push_back(tokenizer.encode(p, chat));
  const int pad = static_cast<int>(model->config().eos_token_ids.empty() ? 0 : model->config().eos_token_ids[0]);
  const auto start = std::chrono::steady_clock::now();
  const auto out = llm::generate(*model, batch, g, pad);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t n = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    n += out[i].size();
    std::cout << nlohmann::json({{"prompt", prompts[i]}, {"ids", out[i]}, {"text", tokenizer.decode(out[i])}}).dump()
              << "\n";
  }
  spdlog::info("{} new tokens in {:.3f} s ({:.1f} tokens/s)", n, s, s > 0 ? n / s : 0.0);
  return 0;
}

}  // namespace

int cmd_lm(const std::vector<std::string>& args) {
  static const std::map<std::string, std::pair<int (*)(const std::vector<std::string>&), const char*>> subs = {
      {"tokenize", {cmd_lm_tokenize, "token ids of texts (one JSON array per input)"}},
      {"init-tiny", {lm_init_tiny, "write a random tiny Llama/Mistral checkpoint (HF layout)"}},
      {"logits", {lm_logits, "last-layer logits of a text to HDF5 (dataset logits [T, V])"}},
      {"generate", {lm_generate, "generate text (batched; greedy, temperature, top-k, top-p)"}},
  };
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: sensecf lm <command> [options]\n\nCommands:\n";
    for (const auto& [name, sub] : subs) std::cout << fmt::format("  {:<11} {}\n", name, sub.second);
    return args.empty() ? 2 : 0;
  }
  const auto it = subs.find(args[0]);
  if (it == subs.end()) {
    std::vector<std::string> names;
    for (const auto& [name, sub] : subs) names.push_back(name);
    const auto best = closest_match(args[0], names);
    throw UsageError("unknown command 'lm " + args[0] + "'", best.empty() ? "" : "did you mean 'lm " + best + "'?");
  }
  return it->second.first(std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace sensecf::cli
