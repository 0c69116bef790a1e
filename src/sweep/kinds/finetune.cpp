// finetune: a LoRA (or QLoRA, NF4) adapter of one LLM of sweep.llm_models,
// trained on one split's kept training rows with the [finetune] options
// (llm/train/trainer.h). Artefacts in its task directory: train.jsonl (the
// training pairs), adapter/ (PEFT layout, train_curve.csv, checkpoint/).
//
// Training pairs, from the kept training rows only (never test or removed
// rows), with the target of sweep.llm_targets:
//   nearest   each row x with label y asks for label 1 - y; the target is the
//             nearest kept row of label 1 - y with x's immutable values (L1
//             over the mutable features scaled by their training range);
//   <method>  a baseline's valid CFs of the rows under the split's f (the
//             prediction flipped, as at generation time);
//   self      the model's own answers, verified by f (zero-shot+verify), for
//             sweep.llm_self_rounds rounds: round k asks round k-1's adapter.
// Rows without a target are left out and counted. The pair is the SenseCF prompt
// (llmcf/prompt.h, zero-shot: what the fine-tuned mode asks) and the target
// in the answer format (llmcf/answer.h), as chat messages for a model with a
// chat template, else as plain prompt/completion text (llmcf::chat_prompts:
// the generator renders its prompts the same way).
//
// An @tiny model's directory is its pretrain_lm task's model/ (input "base").
// Only the seeds of sweep.llm_seeds get finetune tasks.
//
// A run killed or stopped mid-training resumes from adapter/checkpoint: the
// task's second attempt continues the fine-tune instead of starting at step 0.
// With sweep.finetune_ranks = k the task runs on a gang of k ranks, data
// parallel over the gang's communicator.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "kinds.h"
#include "sensecf/cf/explain.h"
#include "sensecf/clf/nn.h"
#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/dist/mpi_communicator.h"
#include "sensecf/dist/nccl_communicator.h"
#include "sensecf/llm/train/trainer.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/generator.h"
#include "sensecf/llmcf/prompt.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

// One JSONL line of training data: the prompt and the answer to learn.
std::string pair_line(const llmcf::Prompt& prompt, const std::string& answer, bool chat) {
  const nlohmann::json line =
      chat ? nlohmann::json{{"messages",
                             {{{"role", "system"}, {"content", prompt.system}},
                              {{"role", "user"}, {"content", prompt.user}},
                              {{"role", "assistant"}, {"content", answer}}}}}
           : nlohmann::json{{"prompt", llmcf::plain_text(prompt)}, {"completion", answer}};
  return line.dump() + "\n";
}

struct Pairs {
  std::string jsonl;
  std::size_t n = 0, without_target = 0;
};

Pairs training_pairs(const data::Dataset& d, const std::vector<std::size_t>& kept, bool chat) {
  const auto& schema = d.schema;
  Pairs out;
  std::ostringstream text;
  for (auto i : kept) {
    const double* x = d.x.row(i);
    const int desired = 1 - d.y[i];
    double best = std::numeric_limits<double>::infinity();
    std::size_t target = 0;
    for (auto k : kept) {
      if (d.y[k] != desired) continue;
      const double* c = d.x.row(k);
      double dist = 0;
      bool same_immutables = true;
      for (std::size_t j = 0; j < schema.size() && same_immutables; ++j) {
        const auto& f = schema.features[j];
        if (f.immutable) {
          same_immutables = x[j] == c[j];
        } else if (f.is_categorical()) {
          dist += x[j] == c[j] ? 0.0 : 1.0;
        } else {
          const double range = f.upper - f.lower;
          dist += std::abs(x[j] - c[j]) / (range > 0 ? range : 1.0);
        }
      }
      if (same_immutables && dist < best) {
        best = dist;
        target = k;
      }
    }
    if (!std::isfinite(best)) {
      ++out.without_target;
      continue;
    }
    const auto prompt = llmcf::build_prompt(schema, x, d.y[i], desired, {}, llmcf::PromptOptions{});
    text << pair_line(prompt, llmcf::format_answer(schema, d.x.row(target)), chat);
    ++out.n;
  }
  out.jsonl = text.str();
  return out;
}

// Targets from a CF method run on the kept training rows under the split's f
// (the prediction flipped, as the LLM is asked at generation time): a
// baseline's CFs, or (self) the LLM's own answers checked by f; rows without a
// valid CF are left out.
Pairs cf_pairs(const Task& task, const TaskEnv& env, const FinetuneParams& p, const SplitRows& rows, bool chat,
               const cf::CfOptions& o) {
  const auto trained = WorkerCache::instance().model(input_dir(task, env.workdir, "clf") + "/clf");
  data::Dataset d = sweep_dataset(env);
  d.schema = trained->schema;
  const data::Matrix train_x = d.x.rows(rows.kept);
  const std::vector<int> train_y = labels(d, rows.kept);
  clf::set_torch_threads(1);  // parallel over queries
  cf::BlackBox f(*trained->model);
  const cf::Context context{&f, &d.schema, &train_x, &train_y};
  const auto targets = cf::flip_targets(f, train_x);
  const cf::ExplainRun run = cf::explain_rows(o, context, train_x, targets);
  Pairs out;
  std::ostringstream text;
  for (const auto& r : run.results) {
    if (r.cfs.empty() || !r.cfs.front().valid) {
      ++out.without_target;
      continue;
    }
    const double* x = train_x.row(r.query);
    const auto prompt = llmcf::build_prompt(d.schema, x, 1 - r.target, r.target, {}, llmcf::PromptOptions{});
    text << pair_line(prompt, llmcf::format_answer(d.schema, r.cfs.front().x.data()), chat);
    ++out.n;
  }
  out.jsonl = text.str();
  spdlog::info("{}: {} of the {} training rows got a valid CF from {}", task.label(), out.n, run.results.size(),
               o.method);
  return out;
}

class Finetune final : public TaskKind {
 public:
  const char* name() const override { return vocab::kFinetune; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    for (const auto& spec : config.sweep.llm_models) {
      const auto m = parse_llm_model(spec);
      if (m.remote()) continue;  // hosted models are prompted, not fine-tuned
      for (const auto& split : study_splits(config)) {
        if (!llm_seed(config, split.seed)) continue;
        std::vector<std::pair<std::string, std::string>> inputs{{"rows", prepare_key(split)}};
        add_base_input(config, m, inputs);
        if (config.sweep.llm_targets != "nearest") inputs.emplace_back("clf", train_clf_key(split));
        // @tiny: ~0.4 s per step on one core (the quickstart's 60 steps: 24 s); a 7-8B model on a GPU: ~10 min.
        const double cost = m.path == kTinyModelPath
                                ? 0.4 * static_cast<double>(config.finetune.max_steps > 0 ? config.finetune.max_steps : 200)
                                : 600.0;
        plan.add(name(), finetune_params(config, split, m).to_json(), inputs, cost, config.sweep.finetune_ranks);
      }
    }
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = FinetuneParams::from(task);
    const SplitRows rows = read_split_rows(input_dir(task, env.workdir, "rows"), task);
    const data::Dataset d = dataset_for(rows, env);
    const std::string dir = task_dir(env.workdir, task.key);
    std::filesystem::create_directories(dir);
    const std::string model_dir = p.path == kTinyModelPath ? input_dir(task, env.workdir, "base") + "/model" : p.path;
    const bool chat = llmcf::chat_prompts(model_dir, env.config->cf.llm.prompt_format);
    std::unique_ptr<Communicator> comm;
    if (env.gang != MPI_COMM_SELF) {
      // The runner bound env.device to this rank's GPU already: NCCL for the
      // gang's gradients where the build has it, MPI otherwise.
      comm = dist::training_communicator(std::make_unique<dist::MpiCommunicator>(env.gang), env.device, 0).comm;
    } else {
      comm = std::make_unique<SingleProcess>();
    }
    // One round, or (self) several: round k trains on the CFs that round k-1's
    // adapter (the base model for k = 1) gave and f verified; the last round's
    // adapter is the task's.
    llm::FinetuneResult result;
    std::string previous;
    Pairs pairs;
    llm::FinetuneOptions o = env.config->finetune;
    const int rounds = p.targets == "self" ? p.rounds : 1;
    for (int round = 1; round <= rounds; ++round) {
      const std::string round_dir = round == rounds ? dir : dir + "/round" + std::to_string(round);
      std::filesystem::create_directories(round_dir);
      if (p.targets == "nearest") {
        pairs = training_pairs(d, rows.kept, chat);
      } else {
        cf::CfOptions co = env.config->cf;
        co.seed = static_cast<unsigned long>(p.split.seed);
        co.threads = env.threads;
        if (p.targets == "self") {
          co.method = "llm:" + p.model + (previous.empty() ? ":zero-shot+verify" : ":fine-tuned+verify");
          co.llm.model_dir = model_dir;
          co.llm.remote.base_url.clear();  // the local model being tuned
          co.llm.adapter = previous;
          co.llm.quant = p.quant;
          co.llm.device = env.device;
          co.llm.dtype = env.config->finetune.model.dtype;
        } else {
          co.method = p.targets;
        }
        pairs = cf_pairs(task, env, p, rows, chat, co);
      }
      if (pairs.n == 0) {
        throw Error(task.label() + ": no training row has a counterfactual target (" + p.targets + ")",
                    p.targets == "nearest" ? "no kept row has a row of the other label with the same immutables"
                                           : "the target method found no valid CF of any kept training row");
      }
      if (comm->rank() == 0) write_text_atomically(round_dir + "/train.jsonl", pairs.jsonl);
      comm->any(false);  // every member waits for the file
      spdlog::info("{}: round {}/{}: {} training pairs ({} rows without a target)", task.label(), round, rounds,
                   pairs.n, pairs.without_target);
      o.model_dir = model_dir;
      o.model.quant = p.quant;
      o.model.device = env.device;
      o.data_path = round_dir + "/train.jsonl";
      o.out_dir = round_dir + "/adapter";
      o.resume = true;
      o.seed = derive_seed(static_cast<std::uint64_t>(p.split.seed), "finetune/" + p.model);
      result = llm::finetune(o, [&env] { return env.stop && env.stop->load(); }, comm.get());
      if (result.interrupted) {
        throw Error(fmt::format("{}: stopped at step {}/{} by a signal", task.label(), result.steps,
                                result.total_steps),
                    "its checkpoint is in " + o.out_dir + "/checkpoint: the next attempt continues from there");
      }
      previous = o.out_dir;
    }
    store::TaskOutput out;
    for (const auto& point : result.curve) {
      store::TrainRow r;
      r.key = task.key;
      r.kind = name();
      r.step = point.step;
      r.loss = point.loss;
      r.val_loss = point.eval_loss;
      out.train.push_back(r);
    }
    out.artifacts["adapter"] = o.out_dir;
    out.artifacts["adapter_fnv1a"] = fnv1a_file_hex(o.out_dir + "/adapter_model.safetensors");
    out.artifacts["training_pairs"] = pairs.n;
    out.artifacts["resumed_from_step"] = result.resumed_from;
    return out;
  }
};

}  // namespace

const TaskKind& finetune_kind() {
  static const Finetune kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
