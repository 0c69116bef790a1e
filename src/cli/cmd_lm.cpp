// `sensecf lm <sub-command>`: the LLM stack on its own (what the sweep's LLM
// tasks build on, and what the golden tests compare against Hugging Face):
//   tokenize      token ids of texts (cmd_lm_tokenize.cpp)
//   init-tiny     a random tiny Llama/Mistral checkpoint (here)
//   init-adapter  a new PEFT LoRA adapter (cmd_lm_adapter.cpp)
//   convert       a checkpoint rewritten as safetensors (cmd_lm_convert.cpp)
//   logits        the last layer's logits of a text (here)
//   generate      batched generation (here)
//   bench         prefill/decode speed at real shapes (cmd_lm_bench.cpp)
//   bench-train   LoRA/QLoRA training-step speed and memory at real shapes (cmd_lm_bench_train.cpp)
// The model and generation options are declared by the llm module
// (sensecf/llm/model/options.h).
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/model/tiny.h"
#include "sensecf/llm/text/tokenizer.h"
#if SENSECF_WITH_HDF5
#include "sensecf/store/h5file.h"
#endif

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
    llm::declare_options(o, options);
    llm::declare_adapter_options(o, options);
    o.add_check([this] {
      if (model.empty()) throw UsageError("--model is required", "pass a model directory, e.g. one from `sensecf lm init-tiny`");
      if (!std::filesystem::is_directory(model))
        throw UsageError("--model " + model + ": no such directory",
                         "pass a Hugging Face model directory (config.json, weights, tokenizer.json)");
      if (options.merge_adapter && options.adapter.empty())
        throw UsageError(
            "--merge-adapter needs --adapter DIR",
            "pass the adapter directory (from `sensecf lm finetune --out DIR`), or drop --merge-adapter");
    });
  }
  // Loads the model (and adapter) and logs what was applied.
  std::unique_ptr<llm::CausalLM> load() const {
    auto m = llm::CausalLM::load(model, options);
    if (!m->adapter_modules().empty()) {
      spdlog::info("adapter {}: {}{}", options.adapter, llm::describe_lora(m->adapter_modules()),
                   m->adapter_merged() ? ", merged into the weights" : "");
    }
    return m;
  }
};

// NumPy's .npy format (version 1.0): a little-endian float32 array [rows, cols].
void write_npy(const std::string& path, const std::vector<float>& values, std::size_t rows, std::size_t cols) {
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
  // magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write '" + path + "'", "does its directory exist?");
  const auto length = static_cast<std::uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  const char le[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
  out.write(le, 2);
  out << header;
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
  if (!out.flush()) throw Error("writing '" + path + "' failed", "is the disk full?");
}

// --out F.npy: NumPy; anything else: HDF5 (`logits` and `input_ids`).
void write_logits(const std::string& out, const std::vector<float>& logits, const std::vector<int>& ids,
                  std::size_t T, std::size_t V) {
  if (ends_with(out, ".npy")) {
    write_npy(out, logits, T, V);
    return;
  }
#if SENSECF_WITH_HDF5
  auto file = store::H5File::create(out);
  file.write_array("/logits", std::vector<double>(logits.begin(), logits.end()), {T, V});
  file.write_array("/input_ids", std::vector<long long>(ids.begin(), ids.end()), {T});
  file.flush();
#else
  (void)ids;
  throw UsageError("--out " + out + ": this build has no HDF5 (the LLM-only build)", "write NumPy instead: --out F.npy");
#endif
}

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
  std::string text, ids_text, out = SENSECF_WITH_HDF5 ? "logits.h5" : "logits.npy";
  bool add_special = false;
  Options options("lm logits",
                  "Write the last layer's logits [T, V] of a text (tokenised exactly as `lm tokenize` does) to the\n"
                  "HDF5 dataset `logits`, with the ids in `input_ids`, or to a NumPy file (--out F.npy, float32):\n"
                  "the check against transformers.");
  m.declare(options);
  options.add("lm.text", &text, "input text", "text");
  options.add("lm.ids", &ids_text, "input token ids instead of --text (comma-separated)", "ids");
  options.add("lm.add_special", &add_special, "add the tokenizer's special tokens (BOS)", "add-special");
  options.add("lm.out", &out, "output file: HDF5, or NumPy float32 [T, V] when it ends in .npy", "out");
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  std::vector<int> ids;
  if (!ids_text.empty()) {
    ids = parse_ids(ids_text);
  } else {
    ids = llm::Tokenizer::load(m.model + "/tokenizer.json").encode(text, add_special);
  }
  if (ids.empty()) throw UsageError("no input tokens", "pass --text or --ids");
  const auto model = m.load();
  const auto start = std::chrono::steady_clock::now();
  const auto logits = model->logits(ids);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto T = ids.size(), V = static_cast<std::size_t>(model->config().vocab_size);
  write_logits(out, logits, ids, T, V);
  spdlog::info("logits [{}, {}] in {:.3f} s written to {}", T, V, s, out);
  return 0;
}

// One prompt of a `--prompts` file: its text (may be empty) and its ids.
struct Prompt {
  std::string text;
  std::vector<int> ids;
};

// --prompts F: one prompt per line, a JSON string (text) or an object with
// "prompt" (text) or "ids" (token ids).
std::vector<Prompt> read_prompts(const std::string& path, const llm::Tokenizer& tokenizer, bool add_special) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "'", "--prompts takes a file with one prompt per line");
  std::vector<Prompt> prompts;
  std::string line;
  for (long number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    const char* hint = R"(each line is "text", {"prompt": "text"} or {"ids": [1, 2, 3]})";
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(where + ": not JSON: " + e.what(), hint);
    }
    Prompt p;
    if (value.is_string()) {
      p.text = value.get<std::string>();
    } else if (value.is_object() && value.contains("prompt") && value["prompt"].is_string()) {
      p.text = value["prompt"].get<std::string>();
    } else if (value.is_object() && value.contains("ids") && value["ids"].is_array()) {
      for (const auto& id : value["ids"]) {
        if (!id.is_number_integer() || id.get<long long>() < 0)
          throw Error(where + ": ids must be non-negative integers, found " + id.dump(), hint);
        p.ids.push_back(id.get<int>());
      }
    } else {
      throw Error(where + ": expected a prompt, found " + value.dump().substr(0, 80), hint);
    }
    if (p.ids.empty()) p.ids = tokenizer.encode(p.text, add_special);
    prompts.push_back(std::move(p));
  }
  return prompts;
}

int lm_generate(const std::vector<std::string>& args) {
  LogOptions log;
  ModelArgs m;
  std::string prompt, prompts_file, ids_text, stop;
  llm::GenerationOptions g;
  bool add_special = false, stream = false;
  Options options("lm generate",
                  "Generate continuations of a prompt (--prompt, --ids) or of a batch of prompts (--prompts F:\n"
                  "one per line, \"text\" or {\"ids\": [...]}), batched with left padding. One JSON line per prompt.");
  m.declare(options);
  options.add("lm.prompt", &prompt, "prompt text", "prompt").not_hashed();
  options.add("lm.prompts", &prompts_file, "file of prompts, one JSON string or {\"ids\": [...]} per line", "prompts")
      .not_hashed();
  options.add("lm.ids", &ids_text, "prompt token ids (comma-separated) instead of text", "ids").not_hashed();
  llm::declare_options(options, g);
  options.add("lm.stop", &stop, "a stop string, or several as a JSON array: '[\"\\n\\n\", \"###\"]'", "stop");
  options.add("lm.add_special", &add_special, "add the tokenizer's special tokens (BOS) to each text prompt",
              "add-special");
  options.add("lm.stream", &stream, "print the text of a single prompt to stdout as it is generated", "stream")
      .not_hashed();
  options.add_check([&] {
    if (!prompt.empty() + !prompts_file.empty() + !ids_text.empty() != 1)
      throw UsageError("give exactly one of --prompt, --prompts and --ids",
                       "e.g. --prompt 'Hello', --prompts FILE (one prompt per line) or --ids 1,2,3");
  });
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  if (!stop.empty() && stop.front() == '[') {
    try {
      g.stop_strings = nlohmann::json::parse(stop).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(std::string("--stop: not a JSON array of strings: ") + e.what(),
                       "e.g. --stop '[\"\\n\\n\", \"###\"]', or one stop string without brackets");
    }
  } else if (!stop.empty()) {
    g.stop_strings = {stop};
  }
  const auto tokenizer = llm::Tokenizer::load(m.model + "/tokenizer.json");
  std::vector<Prompt> prompts;
  if (!prompts_file.empty()) {
    prompts = read_prompts(prompts_file, tokenizer, add_special);
    if (prompts.empty())
      throw UsageError(prompts_file + ": no prompts",
                       "one prompt per line: a JSON string or {\"ids\": [...]}");
  } else if (!ids_text.empty()) {
    prompts.push_back({"", parse_ids(ids_text)});
  } else {
    prompts.push_back({prompt, tokenizer.encode(prompt, add_special)});
  }
  if (stream && prompts.size() != 1)
    throw UsageError(fmt::format("--stream takes a single prompt, got {}", prompts.size()),
                     "pass one --prompt, or drop --stream to generate for all of them");
  const auto model = m.load();
  // config.json's, generation_config.json's and the tokenizer's end ids (<|eot_id|> ends a chat turn).
  g.stop_ids = llm::default_stop_ids(m.model, model->config(), tokenizer);
  std::vector<std::string> shown;
  for (const int id : g.stop_ids) shown.push_back(std::to_string(id));
  spdlog::info("stop ids: {}", join(shown, ", "));
  g.decode = [&tokenizer](const std::vector<int>& ids) { return tokenizer.decode(ids); };
  std::vector<int> streamed;
  std::string printed;
  if (stream) {
    // Print the growing decoded text's new part (a token can complete a UTF-8
    // character only together with the next one, so decode the whole tail).
    g.on_token = [&](std::size_t, int token) {
      streamed.push_back(token);
      const auto text = tokenizer.decode(streamed);
      if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::cout << text.substr(printed.size()) << std::flush;
        printed = text;
      }
      return true;
    };
  }
  std::vector<std::vector<int>> batch;
  for (const auto& p : prompts) batch.push_back(p.ids);
  const int pad = static_cast<int>(model->config().eos_token_ids.empty() ? 0 : model->config().eos_token_ids[0]);
  const auto start = std::chrono::steady_clock::now();
  const auto out = llm::generate(*model, batch, g, pad);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stream) std::cout << "\n";
  std::size_t n = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    n += out[i].size();
    nlohmann::json line = {{"ids", out[i]}, {"text", tokenizer.decode(out[i])}};
    if (!prompts[i].text.empty()) line["prompt"] = prompts[i].text;
    std::cout << line.dump() << "\n";
  }
  spdlog::info("{} new tokens in {:.3f} s ({:.1f} tokens/s)", n, s, s > 0 ? n / s : 0.0);
  return 0;
}

}  // namespace

int cmd_lm(const std::vector<std::string>& args) {
  static const std::map<std::string, std::pair<int (*)(const std::vector<std::string>&), const char*>> subs = {
      {"tokenize", {cmd_lm_tokenize, "token ids of texts (one JSON array per input)"}},
      {"init-tiny", {lm_init_tiny, "write a random tiny Llama/Mistral checkpoint (HF layout)"}},
      {"init-adapter", {cmd_lm_init_adapter, "write a new LoRA adapter for a model (PEFT layout)"}},
      {"finetune", {cmd_lm_finetune, "train a LoRA adapter on JSONL (resumable; PEFT layout)"}},
      {"logits", {lm_logits, "last-layer logits [T, V] of a text to HDF5 (dataset logits) or NumPy (.npy)"}},
      {"generate", {lm_generate, "generate text (batched; greedy, temperature, top-k, top-p)"}},
      {"bench", {cmd_lm_bench, "prefill/decode tokens/s at real model shapes with random weights"}},
      {"bench-train", {cmd_lm_bench_train, "LoRA/QLoRA training-step tokens/s, MFU and memory at real shapes"}},
      {"convert", {cmd_lm_convert, "rewrite a checkpoint (pytorch_model.bin, ...) as safetensors shards"}},
  };
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "Usage: sensecf lm <command> [options]\n\nCommands:\n";
    for (const auto& [name, sub] : subs) std::cout << fmt::format("  {:<13} {}\n", name, sub.second);
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
