// finetune: a LoRA (or QLoRA, NF4) adapter of one LLM of sweep.llm_models,
// trained on one split's kept training rows with the [finetune] options
// (llm/train/trainer.h). Artefacts in its task directory: train.jsonl (the
// training pairs), adapter/ (PEFT layout, train_curve.csv, checkpoint/).
//
// Training pairs, from the kept training rows only (never test or removed
// rows): each row x with label y asks for label 1 - y; the target is the
// nearest kept row of label 1 - y with x's immutable values (L1 over the
// mutable features scaled by their training range). Rows without such a
// neighbour are left out and counted. The prompt states the features, the
// current and the desired class; the completion lists the target's mutable
// features. (The paper's prompt template and the other target sources come
// with the LLM CF generator.)
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
#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/dist/mpi_communicator.h"
#include "sensecf/llm/train/trainer.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

std::string value_text(const data::Feature& f, double v) {
  if (f.is_categorical()) {
    const auto code = static_cast<std::size_t>(std::lround(v));
    return code < f.categories.size() ? f.categories[code] : fmt::format("{}", v);
  }
  return fmt::format("{:.6g}", v);
}

std::string features_text(const data::Schema& schema, const double* x, bool mutable_only) {
  std::vector<std::string> parts;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const auto& f = schema.features[j];
    if (mutable_only && f.immutable) continue;
    parts.push_back(f.name + "=" + value_text(f, x[j]) + (f.unit.empty() ? "" : " " + f.unit));
  }
  return join(parts, ", ");
}

struct Pairs {
  std::string jsonl;
  std::size_t n = 0, without_target = 0;
};

Pairs training_pairs(const data::Dataset& d, const std::vector<std::size_t>& kept) {
  const auto& schema = d.schema;
  std::vector<std::string> immutable;
  for (const auto& f : schema.features)
    if (f.immutable) immutable.push_back(f.name);
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
    const std::string prompt =
        fmt::format("Patient features: {}\nCurrent stress class: {}. Desired stress class: {}.\n"
                    "Change as few features as possible and keep {} as they are.\nCounterfactual:",
                    features_text(schema, x, false), d.y[i], desired, join(immutable, ", "));
    text << nlohmann::json{{"prompt", prompt}, {"completion", " " + features_text(schema, d.x.row(target), true)}}
                .dump()
         << "\n";
    ++out.n;
  }
  out.jsonl = text.str();
  return out;
}

class Finetune final : public TaskKind {
 public:
  const char* name() const override { return vocab::kFinetune; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    for (const auto& spec : config.sweep.llm_models) {
      const auto m = parse_llm_model(spec);
      for (const auto& split : study_splits(config)) {
        const FinetuneParams p{split, m.name, m.path, m.quant};
        plan.add(name(), p.to_json(), {{"rows", prepare_key(split)}}, 600.0, config.sweep.finetune_ranks);
      }
    }
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = FinetuneParams::from(task);
    const SplitRows rows = read_split_rows(input_dir(task, env.workdir, "rows"), task);
    const data::Dataset d = dataset_for(rows, env);
    const std::string dir = task_dir(env.workdir, task.key);
    std::filesystem::create_directories(dir);
    const Pairs pairs = training_pairs(d, rows.kept);
    if (pairs.n == 0) {
      throw Error(task.label() + ": no training row has a counterfactual target of the other class with the same "
                                 "immutable features");
    }
    std::unique_ptr<Communicator> comm;
    if (env.gang != MPI_COMM_SELF) {
      comm = std::make_unique<dist::MpiCommunicator>(env.gang);
    } else {
      comm = std::make_unique<SingleProcess>();
    }
    if (comm->rank() == 0) write_text_atomically(dir + "/train.jsonl", pairs.jsonl);
    comm->any(false);  // every member waits for the file
    spdlog::info("{}: {} training pairs ({} rows without a target of the other class)", task.label(), pairs.n,
                 pairs.without_target);

    llm::FinetuneOptions o = env.config->finetune;
    o.model_dir = p.path;
    o.model.quant = p.quant;
    o.model.device = env.device;
    o.data_path = dir + "/train.jsonl";
    o.out_dir = dir + "/adapter";
    o.resume = true;
    o.seed = derive_seed(static_cast<std::uint64_t>(p.split.seed), "finetune/" + p.model);
    const auto result = llm::finetune(o, [&env] { return env.stop && env.stop->load(); }, comm.get());
    if (result.interrupted) {
      throw Error(fmt::format("{}: stopped at step {}/{} by a signal", task.label(), result.steps, result.total_steps),
                  "its checkpoint is in " + o.out_dir + "/checkpoint: the next attempt continues from there");
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
