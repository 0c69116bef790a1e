// The local backend (llmcf/backend.h): a Llama / Mistral model in this process.
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "sensecf/core/error.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/text/chat.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llmcf/backend.h"
#include "sensecf/llmcf/generator.h"
#include "sensecf/llmcf/grammar.h"

namespace sensecf::llmcf {
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

class LocalBackend final : public Backend {
 public:
  LocalBackend(const cf::CfOptions& o, std::shared_ptr<const llm::CausalLM> model,
               std::shared_ptr<const llm::Tokenizer> tokenizer)
      : options_(o.llm), tokenizer_(std::move(tokenizer)), model_(std::move(model)) {}

  std::string describe() const override { return "local model " + options_.model_dir; }
  bool remote() const override { return false; }

  void prepare(const std::string& method, bool constrained) override {
    const auto& l = options_;
    if (!model_) {  // else given in memory: model_dir is a label (no generation_config.json there)
      const std::string tokenizer_path = l.model_dir + "/tokenizer.json";
      if (!std::filesystem::exists(tokenizer_path))
        throw Error(method + ": no tokenizer.json in '" + l.model_dir + "'",
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
      throw Error(method + ": the model declares no end-of-sequence token (config.json, generation_config.json, "
                           "tokenizer.json)");
    pad_id_ = stop_ids_.front();
    chat_ = chat_prompts(l.model_dir, l.prompt_format);
    if (constrained) vocabulary_ = TokenVocabulary::build(*tokenizer_);
    spdlog::debug("{}: {} prompts", method, chat_ ? "chat" : "plain");
  }

  // Generates every conversation, with the answer grammar per sequence when
  // constrained. generate takes one temperature per call, so the sequences go
  // by temperature (the greedy first candidates, then the sampled ones),
  // within that by prompt length, cf.llm_batch_size at a time.
  void complete(const data::Schema& schema, const data::Matrix& queries, std::vector<Conversation>& conversations,
                const BackendSettings& s) const override {
    if (!model_) throw Error("local LLM backend: complete before prepare");
    if (s.constrained && !vocabulary_) throw Error("local LLM backend: constrained decoding without prepare(constrained)");
    // The model gets this batch's threads (the baselines' callers set LibTorch
    // to one thread and parallelise over queries; generation is one batch).
    const int threads_before = at::get_num_threads();
    at::set_num_threads(s.threads > 0 ? s.threads : static_cast<int>(std::thread::hardware_concurrency()));
    struct Restore {
      int n;
      ~Restore() { at::set_num_threads(n); }
    } restore{threads_before};

    std::vector<std::vector<int>> ids(conversations.size());
    for (std::size_t i = 0; i < conversations.size(); ++i)
      ids[i] = encode(conversations[i].prompt, conversations[i].turns);
    std::vector<std::size_t> order(conversations.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::make_pair(conversations[a].temperature, ids[a].size()) <
             std::make_pair(conversations[b].temperature, ids[b].size());
    });
    const auto batch = static_cast<std::size_t>(options_.batch_size);
    for (std::size_t start = 0, end = 0; start < order.size(); start = end) {
      const double temperature = conversations[order[start]].temperature;
      while (end < order.size() && end - start < batch && conversations[order[end]].temperature == temperature) ++end;
      llm::GenerationOptions g;
      g.max_new_tokens = s.max_new_tokens;
      g.stop_ids = stop_ids_;
      g.temperature = temperature;
      g.top_p = s.top_p;
      std::vector<std::vector<int>> prompts;
      std::vector<GrammarMatcher> matchers;
      for (std::size_t k = start; k < end; ++k) {
        const auto& c = conversations[order[k]];
        prompts.push_back(ids[order[k]]);
        g.seeds.push_back(c.seed);
        if (s.constrained) matchers.emplace_back(answer_grammar(schema, queries.row(c.query)), vocabulary_, stop_ids_);
      }
      if (s.constrained) {
        g.allowed_tokens = [&matchers](std::size_t i, std::vector<int>& allowed) { matchers[i].allowed_tokens(allowed); };
        g.on_token = [&matchers](std::size_t i, int token) {
          matchers[i].accept(token);
          return true;
        };
      }
      const auto out = llm::generate(*model_, prompts, g, pad_id_);
      for (std::size_t k = start; k < end; ++k)
        conversations[order[k]].answer = tokenizer_->decode(out[k - start], /*skip_special=*/true);
    }
  }

 private:
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

  cf::LlmOptions options_;
  std::shared_ptr<const llm::Tokenizer> tokenizer_;
  std::shared_ptr<const llm::CausalLM> model_;
  std::shared_ptr<const TokenVocabulary> vocabulary_;
  std::vector<int> stop_ids_;
  int pad_id_ = 0;
  bool chat_ = false;
};

}  // namespace

std::unique_ptr<Backend> make_local_backend(const cf::CfOptions& options, std::shared_ptr<const llm::CausalLM> model,
                                            std::shared_ptr<const llm::Tokenizer> tokenizer) {
  return std::make_unique<LocalBackend>(options, std::move(model), std::move(tokenizer));
}

}  // namespace sensecf::llmcf
