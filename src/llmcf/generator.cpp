// The LLM CF generator (see llmcf/generator.h).
#include "sensecf/llmcf/generator.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "sensecf/cf/metrics.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/backend.h"
#include "sensecf/llmcf/parse.h"
#include "sensecf/llmcf/prompt.h"

namespace sensecf::llmcf {

LlmMethod parse_method(const std::string& name) {
  const std::string hint =
      "write llm:<model>:<mode>[+tag...], mode zero-shot | few-shot | fine-tuned, tags free | constrained | verify | "
      "refine; e.g. llm:llama-3.1-8b:fine-tuned+verify";
  if (name.rfind(kMethodPrefix, 0) != 0) throw UsageError("'" + name + "' is not an LLM method", hint);
  const std::string rest = name.substr(std::string(kMethodPrefix).size());
  const auto colon = rest.find(':');
  if (colon == std::string::npos || colon == 0)
    throw UsageError("LLM method '" + name + "': no model and mode", hint);
  LlmMethod m;
  m.model = rest.substr(0, colon);
  auto parts = split_list(rest.substr(colon + 1), '+');
  m.mode = parts.empty() ? "" : parts.front();
  if (m.mode != kZeroShot && m.mode != kFewShot && m.mode != kFineTuned)
    throw UsageError("LLM method '" + name + "': unknown mode '" + m.mode + "'", hint);
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const auto& t = parts[i];
    if (t == "free") {
      m.constrained = 0;
    } else if (t == "constrained") {
      m.constrained = 1;
    } else if (t == "verify") {
      m.verify = true;
    } else if (t == "refine") {
      m.refine = true;
    } else {
      throw UsageError("LLM method '" + name + "': unknown tag '+" + t + "'", hint);
    }
    m.tags.push_back(t);
  }
  for (char ch : m.model) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_'))
      throw UsageError("LLM method '" + name + "': the model label may hold letters, digits, '-', '.', '_' only",
                       hint);
  }
  return m;
}

namespace {

using Clock = std::chrono::steady_clock;

struct Candidate {
  std::vector<double> x;
  std::size_t answer = 0;  // index into the query's answers
};

class LlmGenerator final : public cf::Generator {
 public:
  LlmGenerator(const cf::CfOptions& o, std::unique_ptr<Backend> backend)
      : options_(o), method_(parse_method(o.method)), backend_(std::move(backend)) {
    const auto& l = o.llm;
    constrained_ = method_.constrained < 0 ? l.constrained : method_.constrained == 1;
    candidates_ = method_.verify ? std::max(l.verify_candidates, l.candidates) : l.candidates;
    refine_ = method_.refine || l.refine;
    shots_ = method_.mode == kFewShot ? std::max(l.shots, 1) : 0;
    if (backend_->remote() && method_.mode == kFineTuned)
      throw UsageError(o.method + ": a remote model cannot be fine-tuned here",
                       "use llm:" + method_.model + ":zero-shot or llm:" + method_.model +
                           ":few-shot with a remote model; the fine-tuned mode needs a local model (--lm.model DIR)");
  }

  std::string name() const override { return options_.method; }

  void prepare(const cf::Context& context) override {
    cf::Generator::prepare(context);
    if (!context.schema || !context.f) throw Error(name() + ": the context needs the schema and the black box");
    if (shots_ > 0 && (!context.train_x || !context.train_y))
      throw Error(name() + ": few-shot prompts need the training rows");
    backend_->prepare(name(), constrained_);
    prepared_ = true;
    spdlog::debug("{}: {}, constrained decoding {}, {} candidate(s){}", name(), backend_->describe(),
                  constrained_ ? "on" : "off", candidates_, refine_ ? ", refine" : "");
  }

  cf::QueryResult explain(const std::vector<double>& x, int target, Rng& rng) const override {
    data::Matrix q(1, x.size());
    q.values = x;
    auto results = explain_batch(q, {target}, cf::BatchSettings{rng.next(), 1});
    return std::move(results.front());
  }

  std::vector<cf::QueryResult> explain_batch(const data::Matrix& queries, const std::vector<int>& targets,
                                             const cf::BatchSettings& s) const override {
    if (!prepared_) throw Error(name() + ": explain before prepare");
    const auto began = Clock::now();
    const auto& schema = *context_.schema;
    const std::size_t n = queries.n_rows;
    std::vector<cf::QueryResult> results(n);
    std::vector<Prompt> prompts(n);
    std::vector<Conversation> conversations;
    PromptOptions po;
    po.shots = shots_;
    po.shot_choice = options_.llm.shot_choice;
    for (std::size_t q = 0; q < n; ++q) {
      results[q].query = q;
      results[q].target = targets[q];
      const double* x = queries.row(q);
      Rng rng(cf::query_seed(s.seed, q));
      std::vector<const double*> examples;
      if (shots_ > 0) {
        for (auto row : choose_examples(schema, *context_.train_x, *context_.train_y, x, targets[q], shots_,
                                        po.shot_choice, rng))
          examples.push_back(context_.train_x->row(row));
      }
      prompts[q] = build_prompt(schema, x, 1 - targets[q], targets[q], examples, po);
      for (int c = 0; c < candidates_; ++c) {
        Conversation conv;
        conv.query = q;
        conv.prompt = prompts[q];
        conv.seed = derive_seed(cf::query_seed(s.seed, q), "llm/" + std::to_string(c));
        conv.temperature = c == 0 ? options_.llm.temperature : options_.llm.sample_temperature;
        conversations.push_back(std::move(conv));
      }
    }
    BackendSettings settings;
    settings.constrained = constrained_;
    settings.max_new_tokens = max_new_tokens(schema);
    settings.top_p = options_.llm.top_p;
    settings.threads = s.threads;
    backend_->complete(schema, queries, conversations, settings);
    std::vector<std::vector<Candidate>> parsed(n);
    for (const auto& conv : conversations) collect(queries, conv, results[conv.query], parsed[conv.query]);
    choose(queries, targets, parsed, results);

    if (refine_) {
      // One more round for every query whose answers parsed but none is valid:
      // the conversation goes on with f's verdict on the first parsed answer.
      std::vector<Conversation> again;
      for (std::size_t q = 0; q < n; ++q) {
        if (parsed[q].empty() || (!results[q].cfs.empty() && results[q].cfs.front().valid)) continue;
        const auto& first = parsed[q].front();
        const double p1 = context_.f->predict_proba(first.x);
        Conversation conv;
        conv.query = q;
        conv.prompt = prompts[q];
        conv.turns = {{results[q].answers[first.answer], refine_message(p1, targets[q])}};
        conv.seed = derive_seed(cf::query_seed(s.seed, q), "llm/refine");
        conv.temperature = options_.llm.temperature;
        again.push_back(std::move(conv));
      }
      if (!again.empty()) {
        backend_->complete(schema, queries, again, settings);
        for (const auto& conv : again) collect(queries, conv, results[conv.query], parsed[conv.query]);
        choose(queries, targets, parsed, results);
      }
    }
    const double per_query = n ? std::chrono::duration<double>(Clock::now() - began).count() / n : 0.0;
    for (auto& r : results) {
      r.seconds = per_query;
      if (r.cfs.empty() && r.note.empty()) {
        r.note = r.answers.empty() ? "no answer" : fmt::format("none of {} answers parsed", r.answers.size());
      }
    }
    return results;
  }

  std::map<std::string, double> usage() const override {
    const auto u = backend_->usage();
    if (!u) return {};
    std::map<std::string, double> out;
    const nlohmann::json counters = remote::to_json(*u);
    for (const auto& [key, value] : counters.items()) out[key] = value.get<double>();
    return out;
  }

 private:
  std::string refine_message(double p1, int target) const {
    const int predicted = p1 > 0.5 ? 1 : 0;
    return fmt::format(
        "The classifier still predicts label {} for your counterfactual (probability of label 1: {:.2f}). Modify the "
        "instance further so that the predicted label becomes {}. Only adjust features not listed under \"Fixed "
        "Features\", and answer in the same format within <new> tags.",
        predicted, p1, target);
  }

  int max_new_tokens(const data::Schema& schema) const {
    if (options_.llm.max_new_tokens > 0) return options_.llm.max_new_tokens;
    // Every byte of the longest answer as its own token, plus room for prose.
    std::size_t bytes = std::string(kOpenTag).size() + std::string(kCloseTag).size() + 2;
    for (const auto& f : schema.features) {
      std::size_t value = 16;
      for (const auto& c : f.categories) value = std::max(value, c.size());
      bytes += feature_label(f).size() + value + 5;
    }
    return static_cast<int>(bytes) + 32;
  }

  // A conversation's answer joins its query's answers; a conversation without
  // one (a remote request given up on) leaves its error as the query's note.
  void collect(const data::Matrix& queries, const Conversation& conv, cf::QueryResult& r,
               std::vector<Candidate>& parsed) const {
    if (!conv.error.empty()) {
      spdlog::warn("{}: query {}: no answer: {}", name(), conv.query, conv.error);
      if (r.note.empty()) r.note = "no answer: " + conv.error;
      return;
    }
    r.answers.push_back(conv.answer);
    const ParsedAnswer a = parse_answer(*context_.schema, queries.row(conv.query), conv.answer);
    if (!a.ok) return;
    ++r.n_parsed;
    parsed.push_back(Candidate{a.x, r.answers.size() - 1});
  }

  // The CF of each query: the valid parsed candidate closest to the query,
  // else the first parsed one; f is asked once for all candidates.
  void choose(const data::Matrix& queries, const std::vector<int>& targets,
              const std::vector<std::vector<Candidate>>& parsed, std::vector<cf::QueryResult>& results) const {
    data::Matrix all(0, queries.n_cols);
    for (const auto& list : parsed)
      for (const auto& c : list) all.values.insert(all.values.end(), c.x.begin(), c.x.end());
    all.n_rows = all.values.size() / std::max<std::size_t>(1, queries.n_cols);
    const auto p1 = all.n_rows ? context_.f->predict_proba(all) : std::vector<double>{};
    std::size_t k = 0;
    for (std::size_t q = 0; q < parsed.size(); ++q) {
      const double* x = queries.row(q);
      int best = -1;
      double best_distance = std::numeric_limits<double>::infinity();
      for (std::size_t c = 0; c < parsed[q].size(); ++c, ++k) {
        const bool valid = (p1[k] > 0.5 ? 1 : 0) == targets[q];
        if (!valid) continue;
        const double d = cf::cf_distance(*context_.schema, x, parsed[q][c].x.data());
        if (d < best_distance) {
          best_distance = d;
          best = static_cast<int>(c);
        }
      }
      if (best < 0 && !parsed[q].empty()) best = 0;
      results[q].cfs.clear();
      if (best >= 0) {
        cf::Counterfactual cf;
        cf.x = parsed[q][static_cast<std::size_t>(best)].x;
        cf.p1 = p1[k - parsed[q].size() + static_cast<std::size_t>(best)];
        cf.valid = (cf.p1 > 0.5 ? 1 : 0) == targets[q];
        results[q].cfs.push_back(std::move(cf));
      }
    }
  }

  cf::CfOptions options_;
  LlmMethod method_;
  std::unique_ptr<Backend> backend_;
  bool constrained_ = true;
  int candidates_ = 1;
  bool refine_ = false;
  int shots_ = 0;
  bool prepared_ = false;
};

}  // namespace

bool chat_prompts(const std::string& model_dir, const std::string& prompt_format) {
  if (prompt_format == "chat") return true;
  if (prompt_format == "plain") return false;
  std::ifstream in(model_dir + "/tokenizer_config.json");
  if (!in) return false;
  try {
    return nlohmann::json::parse(in).contains("chat_template");
  } catch (const nlohmann::json::exception&) {
    return false;  // not ours to validate: the model's own loaders read it
  }
}

std::unique_ptr<cf::Generator> make_llm_generator(const cf::CfOptions& options) {
  if (!options.llm.remote.base_url.empty()) return std::make_unique<LlmGenerator>(options, make_remote_backend(options));
  const auto method = parse_method(options.method);
  if (options.llm.model_dir.empty())
    throw UsageError(options.method + ": no model",
                     "pass the model directory with --lm.model DIR (config.json, weights, tokenizer.json), or a "
                     "server with --lm.base-url URL --lm.model-name NAME");
  if (method.mode == kFineTuned && options.llm.adapter.empty())
    throw UsageError(options.method + ": the fine-tuned mode needs a LoRA adapter",
                     "pass --lm.adapter DIR (from `sensecf lm finetune`), or run it in a sweep whose finetune "
                     "tasks make one");
  if (method.mode != kFineTuned && !options.llm.adapter.empty())
    spdlog::warn("{}: an adapter is given ({}) and will be used, but the mode is {}", options.method,
                 options.llm.adapter, method.mode);
  return std::make_unique<LlmGenerator>(options, make_local_backend(options));
}

std::unique_ptr<cf::Generator> make_llm_generator(const cf::CfOptions& options,
                                                  std::shared_ptr<const llm::CausalLM> model,
                                                  std::shared_ptr<const llm::Tokenizer> tokenizer) {
  if (!model || !tokenizer) throw Error("make_llm_generator: no model or no tokenizer given");
  return std::make_unique<LlmGenerator>(options, make_local_backend(options, std::move(model), std::move(tokenizer)));
}

void register_methods() {
  cf::register_method_family(
      kMethodPrefix, [](const cf::CfOptions& o) { return make_llm_generator(o); },
      [](const std::string& name) { parse_method(name); });
}

}  // namespace sensecf::llmcf
