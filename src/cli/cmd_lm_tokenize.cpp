// `sensecf lm tokenize`: token ids of text with a tokenizer.json, one JSON array
// per input on stdout. Exists to check our tokenizer against references
// (tests/golden/tokenizer/) and to see how a prompt is tokenised.
//   --text S       one input
//   --jsonl F      one input per line, each line a JSON string ("-": stdin)
// Special tokens are neither added (--add-special) nor recognised in the text
// (--parse-special) unless asked.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/text/tokenizer.h"

namespace sensecf::cli {

int cmd_lm_tokenize(const std::vector<std::string>& args) {
  LogOptions log;
  std::string tokenizer_path;
  std::string text;
  std::string jsonl;
  bool add_special = false;
  bool parse_special = false;
  bool decode = false;
  Options options("lm tokenize",
                  "Print the token ids of text, one JSON array per input line:\n"
                  "  sensecf lm tokenize --tokenizer tokenizer.json --text 'glucose 210.8 mg/dL'\n"
                  "  sensecf lm tokenize --tokenizer tokenizer.json --jsonl inputs.jsonl   (each line a JSON string)");
  options.add("lm.tokenizer", &tokenizer_path, "tokenizer.json (Hugging Face format, BPE)", "tokenizer");
  options.add("lm.text", &text, "the text to tokenise", "text").not_hashed();
  options.add("lm.jsonl", &jsonl, "file with one JSON string per line ('-': stdin)", "jsonl").not_hashed();
  options.add("lm.add_special", &add_special, "add the post-processor's special tokens (BOS)", "add-special");
  options.add("lm.parse_special", &parse_special,
              "recognise special tokens such as <|eot_id|> written in the text (off: they are plain text)",
              "parse-special");
  options.add("lm.decode", &decode, "also print the decoded text of each array on stderr", "decode").not_hashed();
  options.add_check([&] {
    if (tokenizer_path.empty()) throw UsageError("--tokenizer is required", "pass the path of a tokenizer.json");
    if (text.empty() == jsonl.empty()) throw UsageError("give exactly one of --text and --jsonl");
  });
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const llm::Tokenizer tokenizer = llm::Tokenizer::load(tokenizer_path);
  spdlog::debug("tokenizer {}: {}", tokenizer_path, tokenizer.describe());
  const llm::EncodeOptions encode_options{add_special, parse_special};

  auto emit = [&](const std::string& input) {
    const std::vector<int> ids = tokenizer.encode(input, encode_options);
    std::string line = "[";
    for (std::size_t k = 0; k < ids.size(); ++k) {
      if (k) line += ',';
      line += std::to_string(ids[k]);
    }
    line += "]\n";
    std::cout << line;
    if (decode) std::cerr << nlohmann::json(tokenizer.decode(ids)).dump() << "\n";
  };

  if (!text.empty()) {
    emit(text);
  } else {
    std::ifstream file;
    if (jsonl != "-") {
      file.open(jsonl, std::ios::binary);
      if (!file) throw Error("cannot open '" + jsonl + "'", "--jsonl takes a file with one JSON string per line");
    }
    std::istream& in = jsonl == "-" ? std::cin : file;
    std::string line;
    for (long number = 1; std::getline(in, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        throw Error(jsonl + ":" + std::to_string(number) + ": not a JSON string: " + e.what(),
                    "each line of --jsonl is one JSON string, e.g. \"hello\\nworld\"");
      }
      if (!value.is_string()) {
        throw Error(jsonl + ":" + std::to_string(number) + ": expected a JSON string, found " + value.dump());
      }
      emit(value.get<std::string>());
    }
  }
  std::cout.flush();
  return 0;
}

}  // namespace sensecf::cli
