// The LLM CF generator (see llmcf/generator.h).
#include "sensecf/llmcf/generator.h"

#include <spdlog/fmt/fmt.h>
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "sensecf/cf/metrics.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/text/chat.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/grammar.h"
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

// Models stay loaded across the generate tasks of a worker (the same base and
// adapter serve every seed's table3 and augment tasks): the last two used.
class ModelCache {
 public:
  static ModelCache& instance() {
    static ModelCache cache;
    return cache;
  }
  std::shared_ptr<const llm::CausalLM> get(const std::string& dir, const llm::ModelOptions& o) {
    const std::string key = dir + "\n" + o.adapter + "\n" + o.device + "\n" + o.dtype + "\n" + o.quant;
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        auto model = it->second;
        entries_.erase(it);
        entries_.insert(entries_.begin(), {key, model});
        return model;
      }
    }
    const auto began = Clock::now();
    std::shared_ptr<const llm::CausalLM> model = llm::CausalLM::load(dir, o);
    spdlog::info("llm: loaded {}{} in {:.1f} s", dir, o.adapter.empty() ? "" : " + adapter " + o.adapter,
                 std::chrono::duration<double>(Clock::now() - began).count());
    entries_.insert(entries_.begin(), {key, model});
    if (entries_.size() > 2) entries_.pop_back();
    return model;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::shared_ptr<const llm::CausalLM>>> entries_;
};

// One sequence to generate: a query's prompt and the stream it samples from.
struct Sequence {
  std::size_t query = 0;
  std::vector<int> ids;
  std::uint64_t seed = 0;
  double temperature = 0;
  std::string answer;  // filled by run_sequences
};

struct Candidate {
  std::vector<double> x;
  std::size_t answer = 0;  // index into the query's answers
};

class LlmGenerator final : public cf::Generator {
 public:
  LlmGenerator(const cf::CfOptions& o, std::shared_ptr<const llm::CausalLM> model,
               std::shared_ptr<const llm::Tokenizer> tokenizer)
      : options_(o), method_(parse_method(o.method)), tokenizer_(std::move(tokenizer)), model_(std::move(model)) {
    const auto& l = o.llm;
    constrained_ = method_.constrained < 0 ? l.constrained : method_.constrained == 1;
    candidates_ = method_.verify ? std::max(l.verify_candidates, l.candidates) : l.candidates;
    refine_ = method_.refine || l.refine;
    shots_ = method_.mode == kFewShot ? std::max(l.shots, 1) : 0;
    if (l.model_dir.empty() && !model_)
      throw UsageError(o.method + ": no model", "pass the model directory with --lm.model DIR (config.json, "
                                                "weights, tokenizer.json)");
    if (method_.mode == kFineTuned && l.adapter.empty() && !model_)
      throw UsageError(o.method + ": the fine-tuned mode needs a LoRA adapter",
                       "pass --lm.adapter DIR (from `sensecf lm finetune`), or run it in a sweep whose finetune "
                       "tasks make one");
    if (method_.mode != kFineTuned && !l.adapter.empty())
      spdlog::warn("{}: an adapter is given ({}) and will be used, but the mode is {}", o.method, l.adapter,
                   method_.mode);
  }

  std::string name() const override { return options_.method; }

  void prepare(const cf::Context& context) override {
    cf::Generator::prepare(context);
    if (!context.schema || !context.f) throw Error(name() + ": the context needs the schema and the black box");
    if (shots_ > 0 && (!context.train_x || !context.train_y))
      throw Error(name() + ": few-shot prompts need the training rows");
    const auto& l = options_.llm;
    if (!model_) {  // else given in memory: model_dir is a label (no generation_config.json there)
      const std::string tokenizer_path = l.model_dir + "/tokenizer.json";
      if (!std::filesystem::exists(tokenizer_path))
        throw Error(name() + ": no tokenizer.json in '" + l.model_dir + "'",
                    "the model directory needs the Hugging Face tokenizer.json next to config.json");
      tokenizer_ = std::make_shared<llm::Tokenizer>(llm::Tokenizer::load(tokenizer_path));
      llm::ModelOptions mo;
      mo.device = l.device;
      mo.dtype = l.dtype;
      mo.quant = l.quant;
      mo.adapter = l.adapter;
      model_ = ModelCache::instance().get(l.model_dir, mo);
    }
    stop_ids_ = llm::default_stop_ids(l.model_dir, model_->config(), *tokenizer_);
    if (stop_ids_.empty())
      throw Error(name() + ": the model declares no end-of-sequence token (config.json, generation_config.json, "
                           "tokenizer.json)");
    pad_id_ = stop_ids_.front();
    chat_ = chat_prompts(l.model_dir, l.prompt_format);
    if (constrained_) vocabulary_ = TokenVocabulary::build(*tokenizer_);
    spdlog::debug("{}: {} prompts, constrained decoding {}, {} candidate(s){}", name(), chat_ ? "chat" : "plain",
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
    if (!model_) throw Error(name() + ": explain before prepare");
    const auto began = Clock::now();
    const auto& schema = *context_.schema;
    const std::size_t n = queries.n_rows;
    std::vector<cf::QueryResult> results(n);
    std::vector<Prompt> prompts(n);
    std::vector<Sequence> sequences;
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
      const auto ids = encode(prompts[q], {});
      for (int c = 0; c < candidates_; ++c) {
        Sequence seq;
        seq.query = q;
        seq.ids = ids;
        seq.seed = derive_seed(cf::query_seed(s.seed, q), "llm/" + std::to_string(c));
        seq.temperature = c == 0 ? options_.llm.temperature : options_.llm.sample_temperature;
        sequences.push_back(std::move(seq));
      }
    }
    // The model gets this batch's threads (the baselines' callers set LibTorch
    // to one thread and parallelise over queries; generation is one batch).
    const int threads_before = at::get_num_threads();
    at::set_num_threads(s.threads > 0 ? s.threads : static_cast<int>(std::thread::hardware_concurrency()));
    struct Restore {
      int n;
      ~Restore() { at::set_num_threads(n); }
    } restore{threads_before};
    run_sequences(queries, sequences);
    std::vector<std::vector<Candidate>> parsed(n);
    for (const auto& seq : sequences) collect(queries, seq, results[seq.query], parsed[seq.query]);
    choose(queries, targets, parsed, results);

    if (refine_) {
      // One more round for every query whose answers parsed but none is valid:
      // the conversation goes on with f's verdict on the first parsed answer.
      std::vector<Sequence> again;
      for (std::size_t q = 0; q < n; ++q) {
        if (parsed[q].empty() || (!results[q].cfs.empty() && results[q].cfs.front().valid)) continue;
        const auto& first = parsed[q].front();
        const double p1 = context_.f->predict_proba(first.x);
        Sequence seq;
        seq.query = q;
        seq.ids = encode(prompts[q], {{results[q].answers[first.answer], refine_message(p1, targets[q])}});
        seq.seed = derive_seed(cf::query_seed(s.seed, q), "llm/refine");
        seq.temperature = options_.llm.temperature;
        again.push_back(std::move(seq));
      }
      if (!again.empty()) {
        run_sequences(queries, again);
        for (const auto& seq : again) collect(queries, seq, results[seq.query], parsed[seq.query]);
        choose(queries, targets, parsed, results);
      }
    }
    const double per_query = n ? std::chrono::duration<double>(Clock::now() - began).count() / n : 0.0;
    for (auto& r : results) {
      r.seconds = per_query;
      if (r.cfs.empty()) {
        r.note = r.answers.empty() ? "no answer" : fmt::format("none of {} answers parsed", r.answers.size());
      }
    }
    return results;
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

  // The ids of a prompt (and of earlier turns: answer, follow-up), as a chat or
  // as plain text: BOS + system + user [+ answer + follow-up] (what the
  // fine-tuning data of the plain format holds, finetune kind).
  std::vector<int> encode(const Prompt& p, const std::vector<std::pair<std::string, std::string>>& turns) const {
    if (chat_) {
      std::vector<llm::ChatMessage> messages{{"system", p.system}, {"user", p.user}};
      for (const auto& [answer, follow_up] : turns) {
        messages.push_back({"assistant", answer});
        messages.push_back({"user", follow_up});
      }
      return llm::apply_chat_template(*tokenizer_, llm::guess_chat_template(*tokenizer_), messages);
    }
    std::string text = plain_text(p);
    for (const auto& [answer, follow_up] : turns) text += answer + "\n\n" + follow_up + "\n\n";
    std::vector<int> ids;
    if (const auto bos = tokenizer_->bos_id()) ids.push_back(*bos);
    const auto body = tokenizer_->encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
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

  // Generates every sequence (answer text filled in), with the answer grammar
  // per sequence when constrained. generate takes one temperature per call, so
  // the sequences go by temperature (the greedy first candidates, then the
  // sampled ones), within that by prompt length, cf.llm_batch_size at a time.
  void run_sequences(const data::Matrix& queries, std::vector<Sequence>& sequences) const {
    const auto& schema = *context_.schema;
    std::vector<std::size_t> order(sequences.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::make_pair(sequences[a].temperature, sequences[a].ids.size()) <
             std::make_pair(sequences[b].temperature, sequences[b].ids.size());
    });
    const auto batch = static_cast<std::size_t>(options_.llm.batch_size);
    for (std::size_t start = 0, end = 0; start < order.size(); start = end) {
      const double temperature = sequences[order[start]].temperature;
      while (end < order.size() && end - start < batch && sequences[order[end]].temperature == temperature) ++end;
      llm::GenerationOptions g;
      g.max_new_tokens = max_new_tokens(schema);
      g.stop_ids = stop_ids_;
      g.temperature = temperature;
      g.top_p = options_.llm.top_p;
      std::vector<std::vector<int>> prompts;
      std::vector<GrammarMatcher> matchers;
      for (std::size_t k = start; k < end; ++k) {
        const auto& seq = sequences[order[k]];
        prompts.push_back(seq.ids);
        g.seeds.push_back(seq.seed);
        if (constrained_) matchers.emplace_back(answer_grammar(schema, queries.row(seq.query)), vocabulary_, stop_ids_);
      }
      if (constrained_) {
        g.allowed_tokens = [&matchers](std::size_t i, std::vector<int>& allowed) { matchers[i].allowed_tokens(allowed); };
        g.on_token = [&matchers](std::size_t i, int token) {
          matchers[i].accept(token);
          return true;
        };
      }
      const auto out = llm::generate(*model_, prompts, g, pad_id_);
      for (std::size_t k = start; k < end; ++k)
        sequences[order[k]].answer = tokenizer_->decode(out[k - start], /*skip_special=*/true);
    }
  }

  void collect(const data::Matrix& queries, const Sequence& seq, cf::QueryResult& r,
               std::vector<Candidate>& parsed) const {
    r.answers.push_back(seq.answer);
    const ParsedAnswer a = parse_answer(*context_.schema, queries.row(seq.query), seq.answer);
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
  bool constrained_ = true;
  int candidates_ = 1;
  bool refine_ = false;
  int shots_ = 0;
  bool chat_ = false;
  std::shared_ptr<const llm::Tokenizer> tokenizer_;
  std::shared_ptr<const llm::CausalLM> model_;
  std::shared_ptr<const TokenVocabulary> vocabulary_;
  std::vector<int> stop_ids_;
  int pad_id_ = 0;
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
  return std::make_unique<LlmGenerator>(options, nullptr, nullptr);
}

std::unique_ptr<cf::Generator> make_llm_generator(const cf::CfOptions& options,
                                                  std::shared_ptr<const llm::CausalLM> model,
                                                  std::shared_ptr<const llm::Tokenizer> tokenizer) {
  if (!model || !tokenizer) throw Error("make_llm_generator: no model or no tokenizer given");
  return std::make_unique<LlmGenerator>(options, std::move(model), std::move(tokenizer));
}

void register_methods() {
  cf::register_method_family(
      kMethodPrefix, [](const cf::CfOptions& o) { return make_llm_generator(o); },
      [](const std::string& name) { parse_method(name); });
}

}  // namespace sensecf::llmcf
