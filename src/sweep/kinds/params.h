// The typed parameters of the study's task kinds, shared by the kind that runs
// a task and the kinds that read its artefacts (they compute its key from its
// parameters: task_key(kind, params.to_json())).
//
// to_json() is the task's identity: the task key hashes it, so a field's name,
// type and value must not change for an existing kind (results files hold the
// keys). from() reads a task's JSON back, naming the task when a field is off.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/sweep/plan.h"

namespace sensecf::sweep::kinds {

// Reads a field of task.params, or throws an Error naming the task and field.
template <typename T>
T field(const Task& task, const char* name) {
  try {
    return task.params.at(name).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(task.label() + ": parameter '" + name + "' is missing or of the wrong type (" + e.what() + ")",
                "the results file may come from another sensecf version");
  }
}

// The features task (data.source = aireadi): one per sweep.
nlohmann::json features_params();
inline std::string features_key() { return task_key(vocab::kFeatures, features_params()); }

// One (seed, scenario) of the study: prepare and train_clf tasks.
struct SplitParams {
  int seed = 0;
  std::string scenario = vocab::kFull;
  double fraction = 0.0;  // share of the scarce class(es) removed; 0 for full

  nlohmann::json to_json() const { return {{"seed", seed}, {"scenario", scenario}, {"fraction", fraction}}; }
  static SplitParams from(const Task& t) {
    return {field<int>(t, "seed"), field<std::string>(t, "scenario"), field<double>(t, "fraction")};
  }
  bool full() const { return scenario == vocab::kFull; }
};

// CFs of one method for one purpose (Table III's test rows, or augmentation).
struct GenerateParams {
  SplitParams split;
  std::string method;
  std::string purpose;  // vocab::kTable3 | vocab::kForAugment

  nlohmann::json to_json() const {
    auto j = split.to_json();
    j["method"] = method;
    j["purpose"] = purpose;
    return j;
  }
  static GenerateParams from(const Task& t) {
    return {SplitParams::from(t), field<std::string>(t, "method"), field<std::string>(t, "purpose")};
  }
};

// f_s retrained on the reduced rows plus ratio x removed valid CFs of one method.
struct AugmentParams {
  SplitParams split;
  std::string method;
  double ratio = 0.0;

  nlohmann::json to_json() const {
    auto j = split.to_json();
    j["method"] = method;
    j["ratio"] = ratio;
    return j;
  }
  static AugmentParams from(const Task& t) {
    return {SplitParams::from(t), field<std::string>(t, "method"), field<double>(t, "ratio")};
  }
};

// One classifier trained on a share of the training patients (Fig. 1).
struct Fig1Params {
  int seed = 0;
  std::string model;
  double reduction = 0.0;

  nlohmann::json to_json() const { return {{"seed", seed}, {"model", model}, {"reduction", reduction}}; }
  static Fig1Params from(const Task& t) {
    return {field<int>(t, "seed"), field<std::string>(t, "model"), field<double>(t, "reduction")};
  }
};

// A LoRA/QLoRA adapter of one LLM (sweep.llm_models) on one split's training rows.
struct FinetuneParams {
  SplitParams split;
  std::string model;  // the name in sweep.llm_models
  std::string path;   // its directory
  std::string quant;  // none | nf4 | nf4-dq
  std::string targets = "nearest";  // sweep.llm_targets: nearest | self | a baseline method
  int rounds = 1;                    // self: sweep.llm_self_rounds

  nlohmann::json to_json() const {
    auto j = split.to_json();
    j["model"] = model;
    j["path"] = path;
    j["quant"] = quant;
    if (targets != "nearest") j["targets"] = targets;  // the default keeps the keys of earlier results
    if (targets == "self") j["rounds"] = rounds;
    return j;
  }
  static FinetuneParams from(const Task& t) {
    FinetuneParams p{SplitParams::from(t), field<std::string>(t, "model"), field<std::string>(t, "path"),
                     field<std::string>(t, "quant")};
    if (t.params.contains("targets")) p.targets = field<std::string>(t, "targets");
    if (t.params.contains("rounds")) p.rounds = field<int>(t, "rounds");
    return p;
  }
};

// A tiny LLM trained from scratch (sweep.llm_models name=@tiny) on the
// training rows of one seed's full split.
struct PretrainLmParams {
  int seed = 0;
  std::string model;  // the name in sweep.llm_models

  nlohmann::json to_json() const { return {{"seed", seed}, {"model", model}}; }
  static PretrainLmParams from(const Task& t) { return {field<int>(t, "seed"), field<std::string>(t, "model")}; }
};

struct ProbeParams {
  int index = 0;
  nlohmann::json to_json() const { return {{"index", index}}; }
  static ProbeParams from(const Task& t) { return {field<int>(t, "index")}; }
};

// Keys of the tasks a kind reads, from their parameters.
inline std::string prepare_key(const SplitParams& p) { return task_key(vocab::kPrepare, p.to_json()); }
inline std::string train_clf_key(const SplitParams& p) { return task_key(vocab::kTrainClf, p.to_json()); }
inline std::string generate_key(const GenerateParams& p) { return task_key(vocab::kGenerate, p.to_json()); }
inline std::string finetune_key(const FinetuneParams& p) { return task_key(vocab::kFinetune, p.to_json()); }
inline std::string pretrain_lm_key(const PretrainLmParams& p) { return task_key(vocab::kPretrainLm, p.to_json()); }

// The pretrain_lm task of an @tiny model: the first LLM seed's full split.
inline PretrainLmParams pretrain_lm_params(const SweepConfig& config, const std::string& model) {
  return {llm_seeds(config.sweep).front(), model};
}
// The finetune task of `m` on a split.
inline FinetuneParams finetune_params(const SweepConfig& config, const SplitParams& split, const LlmModelSpec& m) {
  return {split, m.name, m.path, m.quant, config.sweep.llm_targets, config.sweep.llm_self_rounds};
}
// The inputs an LLM task reads besides its split's: "base" (the pretrain_lm
// task) for an @tiny model.
inline void add_base_input(const SweepConfig& config, const LlmModelSpec& m,
                           std::vector<std::pair<std::string, std::string>>& inputs) {
  if (m.path == kTinyModelPath) inputs.emplace_back("base", pretrain_lm_key(pretrain_lm_params(config, m.name)));
}
// Does `seed` get LLM tasks (sweep.llm_seeds)?
inline bool llm_seed(const SweepConfig& config, int seed) {
  const auto seeds = llm_seeds(config.sweep);
  return std::find(seeds.begin(), seeds.end(), seed) != seeds.end();
}

// The (seed, scenario) pairs of a study, in plan order: full first, then the
// scarce scenarios of sweep.scenarios.
std::vector<SplitParams> study_splits(const SweepConfig& config);

}  // namespace sensecf::sweep::kinds
