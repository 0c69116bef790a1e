// What a sweep runs: its configuration (the [sweep] section plus the modules'
// sections) and the task DAG built from it.
//
// The DAG is made by the task kinds (sweep/kind.h, one file each under
// src/sweep/kinds/), in registry order, each adding its tasks after the tasks
// they read. Plan "study" (the paper), for each seed and scenario (full + the
// scarce ones):
//   prepare  (split + scenario rows)  ->  train_clf (black-box NN f_s)
//     -> generate (CFs of one method: test rows for Table III when the scenario
//        is full, training rows flipped into the scarce class(es) otherwise;
//        CF metrics are computed in the same task, on the CFs in memory)
//     -> augment (one per ratio: reduced set + ratio x removed valid CFs, NN
//        retrained, scored on the test set)
//   and Fig. 1's fig1 tasks (one per classifier and reduction) after prepare.
// With sweep.llm_models, a finetune task per (model, seed, scenario) after
// prepare trains a LoRA/QLoRA adapter on that split's training rows.
// Plan "probe": trivial tasks that exercise the runner itself (tests and the
// dispatch benchmark): they sleep, fail on request, or run as a gang of ranks.
//
// A task's key is a hash of its kind and parameters, so a rerun recognises
// what is done and a changed parameter makes a new task.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/cf/generator.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/synth.h"
#include "sensecf/ingest/aireadi.h"
#include "sensecf/llm/train/pretrain.h"
#include "sensecf/llm/train/trainer.h"

namespace sensecf {
class Options;
}

namespace sensecf::sweep {

struct SweepOptions {
  std::string plan = "study";  // study | probe
  // study
  std::vector<std::string> methods = {"nice", "dice-random", "cfnow-greedy"};
  std::vector<std::string> scenarios = {"positive", "negative", "dual"};
  double fraction = 0.5;                                      // share of the scarce class(es) removed
  std::vector<double> ratios = {0.2, 0.4, 0.6, 0.8, 1.0};    // augmentation ratios
  std::vector<int> seeds = {1};
  int queries = 100;           // Table III: test rows explained per method (0: all)
  double oversample = 1.5;     // augmentation: queries per CF needed (not every query yields a valid CF)
  std::vector<std::string> fig1_models = {"nn", "xgb", "rf", "svm"};
  std::vector<double> fig1_reductions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7};  // empty: no Fig. 1 tasks
  // LLMs to fine-tune, "name=DIR" or "name=DIR:quant" (quant: none | nf4 | nf4-dq);
  // one finetune task per (model, seed, scenario) with the [finetune] options.
  // DIR may be @tiny: a tiny Llama the sweep trains from scratch on the first
  // LLM seed's training rows (a pretrain_lm task; the quickstart's model).
  // LLM methods in sweep.methods (llm:<name>:<mode>, llmcf/generator.h) name
  // one of these models.
  std::vector<std::string> llm_models = {};
  std::vector<int> llm_seeds = {};
  // Methods whose CFs augment the scarce training sets (Table IV, Fig. 7);
  // empty: every method. The others explain Table III's test rows only.
  std::vector<std::string> augment_methods = {};
  // The fine-tuning targets (finetune.cpp): nearest (the nearest training row of
  // the other label with the same immutables), a baseline method whose valid
  // CFs of the training rows (under the split's f) are the targets, or self:
  // the model's own verified CFs of the training rows, llm_self_rounds times
  // (each round asks the adapter of the round before).
  std::string llm_targets = "nearest";
  int llm_self_rounds = 1;  // seeds whose splits get LLM tasks (finetune, LLM generate/augment); empty: all
  int finetune_ranks = 1;  // ranks of one finetune task (data parallel, a gang)
  // probe
  int probe_tasks = 100;
  double probe_ms = 0;               // sleep per task
  std::vector<int> probe_fail = {};  // task indices that always fail
  std::vector<int> probe_flaky = {}; // task indices that fail on their first attempt only
  std::vector<int> probe_gang = {};  // task indices that need 2 ranks at once
  // runner
  int max_attempts = 3;   // per task, failures included
  double grace = 60;      // seconds running tasks get after SIGTERM / SIGUSR1
  double progress = 10;   // seconds between progress lines
};

// Everything a sweep's tasks read. The modules' own option structs are reused
// unchanged; the sweep overrides what its axes set per task (clf seed, CF method).
struct SweepConfig {
  SweepOptions sweep;
  data::DataOptions data;      // data.source: csv (data.path) or synth (the cohort of [synth])
  data::SynthOptions synth;
  clf::ClfOptions clf;
  cf::CfOptions cf;
  llm::FinetuneOptions finetune;  // [finetune] and lm.dtype / lm.attention: every finetune task
  llm::PretrainOptions pretrain;  // [pretrain]: the @tiny models' pretrain_lm tasks
  // data.source = aireadi: [ingest] (root = data.path), run as ingest tasks of
  // this many participants each, merged by one features task (docs/aireadi.md).
  ingest::IngestOptions ingest;
  int ingest_participants_per_task = 100;
  std::string ingest_cache = "auto";  // ingest.cache: finished tables by fingerprint (auto: the user's cache; none)
  // ingest::release_fingerprint of the release, taken once when the sweep
  // starts (it is part of the sweep's identity): the cache key of the table.
  std::string data_fingerprint;
  // data.split: random (patient-level, stratified, seeded) or recommended
  // (participants.tsv's recommended_split: test vs train + val).
  std::string split = "random";
};

// One entry of sweep.llm_models: a local model (name=DIR[:quant], name=@tiny)
// or a remote one on an OpenAI-compatible server (name=URL, the server's
// model called `name`; name=MODEL@URL, called MODEL).
struct LlmModelSpec {
  std::string name, path;           // path: the directory, @tiny, or the server's base URL
  std::string quant = "none";
  std::string model_name;           // remote: the server's name for the model
  bool remote() const { return path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0; }
};
// Parses "name=DIR[:quant]", "name=@tiny", "name=URL" or "name=MODEL@URL";
// throws a UsageError saying what is expected.
LlmModelSpec parse_llm_model(const std::string& spec);
// The DIR of a model the sweep makes itself (pretrain_lm).
inline constexpr const char* kTinyModelPath = "@tiny";
// Methods named llm:<model>:... are LLM methods (llmcf/generator.h).
bool is_llm_method(const std::string& method);
// The sweep.llm_models entry an LLM method names; throws a UsageError when
// none has that name.
LlmModelSpec llm_model_of(const std::string& method, const std::vector<std::string>& llm_models);
// Does `method` augment (sweep.augment_methods)?
bool augments(const SweepOptions& s, const std::string& method);
// sweep.llm_seeds, or every seed when it is empty.
std::vector<int> llm_seeds(const SweepOptions& s);

// Declares [sweep], [data], [synth], [clf] and [cf] (without short aliases).
void declare_options(Options& options, SweepConfig& config);

struct Task {
  std::string key;                // 16 hex digits
  std::string kind;               // core/vocabulary.h: prepare | train_clf | generate | augment | fig1 | probe
  nlohmann::json params;          // the kind's typed parameters as JSON (src/sweep/kinds/params.h)
  // Named dependencies: input name ("rows", "clf", "cfs") -> the key of the task
  // whose artefact this one reads (task_io.h). `deps` holds the same keys.
  std::vector<std::pair<std::string, std::string>> inputs;
  std::vector<std::string> deps;  // keys of the tasks this one waits for
  int ranks = 1;                  // > 1: a gang of ranks runs it together
  double cost = 1;                // estimated seconds (scheduling: longest path first)

  std::string label() const;      // "generate nice positive seed=1"
  std::string param(const char* name) const;  // "" when absent
  const std::string& input(const char* name) const;  // the key of a named input; throws if absent
  bool has_input(const char* name) const;
};

// The task DAG in a topological order (dependencies before dependents).
std::vector<Task> build_plan(const SweepConfig& config);

// 16-hex-digit key of a kind and its parameters (the JSON is canonical: keys sorted).
std::string task_key(const std::string& kind, const nlohmann::json& params);

}  // namespace sensecf::sweep
