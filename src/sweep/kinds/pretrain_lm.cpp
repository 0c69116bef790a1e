// pretrain_lm: a tiny Llama-architecture model trained from scratch, every
// parameter, for a sweep.llm_models entry name=@tiny (llm/train/pretrain.h):
// the quickstart's stand-in for a downloaded checkpoint. Its corpus is the
// training rows of the first LLM seed's full split (never test rows), each
// written as the SenseCF prompt (zero-shot, the row's own class to the other)
// followed by an answer block that restates the row unchanged. So the model
// learns the prompt, the answer format and the values a row holds — but not
// the task: asked for a counterfactual, it copies the patient (an invalid CF).
// What to change, and to what, is what the finetune tasks teach (finetune.cpp);
// the gap between the zero-shot and the fine-tuned rows of the report is that
// lesson, measured.
//
// Artefact: model/ (config.json, tokenizer.json, model.safetensors,
// pretrain_curve.csv) in its task directory.
#include <spdlog/spdlog.h>

#include "common.h"
#include "kinds.h"
#include "sensecf/clf/nn.h"
#include "sensecf/core/random.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/prompt.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

std::vector<std::string> corpus(const data::Dataset& d, const std::vector<std::size_t>& rows) {
  std::vector<std::string> docs;
  for (auto r : rows) {
    const auto prompt = llmcf::build_prompt(d.schema, d.x.row(r), d.y[r], 1 - d.y[r], {}, llmcf::PromptOptions{});
    docs.push_back(llmcf::plain_text(prompt) + llmcf::format_answer(d.schema, d.x.row(r)));
  }
  return docs;
}

class PretrainLm final : public TaskKind {
 public:
  const char* name() const override { return vocab::kPretrainLm; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    for (const auto& spec : config.sweep.llm_models) {
      const auto m = parse_llm_model(spec);
      if (m.path != kTinyModelPath) continue;
      const auto p = pretrain_lm_params(config, m.name);
      const SplitParams full{p.seed, vocab::kFull, 0.0};
      plan.add(name(), p.to_json(), {{"rows", prepare_key(full)}}, 120.0);
    }
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = PretrainLmParams::from(task);
    const SplitRows rows = read_split_rows(input_dir(task, env.workdir, "rows"), task);
    const data::Dataset d = dataset_for(rows, env);
    llm::PretrainOptions o = env.config->pretrain;
    o.out_dir = task_dir(env.workdir, task.key) + "/model";
    o.seed = derive_seed(static_cast<std::uint64_t>(p.seed), "pretrain_lm/" + p.model);
    clf::set_torch_threads(env.threads);
    const auto docs = corpus(d, rows.kept);
    const auto r = llm::pretrain_tiny_llama(docs, o, [&env] { return env.stop && env.stop->load(); });
    spdlog::info("{}: {} documents, {} tokens, vocabulary {}, {} parameters, loss {:.3f} -> {:.3f} in {:.0f} s",
                 task.label(), docs.size(), r.tokens, r.vocab_size, r.parameters, r.first_loss, r.last_loss,
                 r.seconds);
    store::TaskOutput out;
    out.artifacts["model"] = o.out_dir;
    out.artifacts["documents"] = docs.size();
    out.artifacts["parameters"] = r.parameters;
    out.artifacts["vocab_size"] = r.vocab_size;
    out.artifacts["loss_first"] = r.first_loss;
    out.artifacts["loss_last"] = r.last_loss;
    return out;
  }
};

}  // namespace

const TaskKind& pretrain_lm_kind() {
  static const PretrainLm kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
