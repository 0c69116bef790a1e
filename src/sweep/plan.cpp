// Sweep options and the task DAG.
#include "sensecf/sweep/plan.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/remote/options.h"
#include "sensecf/data/source.h"
#include "sensecf/llmcf/generator.h"
#include "sensecf/sweep/kind.h"
#include "kinds/params.h"

namespace sensecf::sweep {

namespace {

// lm.base_url (and lm.model_name) in a sweep config: every LLM method whose
// model sweep.llm_models does not list is that server's, as if the config said
// llm_models = <label>=<lm.model_name or label>@<lm.base_url>.
void add_endpoint_models(SweepConfig& c) {
  const auto& r = c.cf.llm.remote;
  if (r.base_url.empty()) return;
  if (r.base_url.rfind("http://", 0) != 0 && r.base_url.rfind("https://", 0) != 0)
    throw UsageError("lm.base_url must start with http:// or https://, got '" + r.base_url + "'",
                     "e.g. https://api.openai.com/v1, or http://localhost:8000/v1 for a vLLM server");
  for (const auto& method : c.sweep.methods) {
    if (!is_llm_method(method)) continue;
    std::string label;
    try {
      label = llmcf::parse_method(method).model;
    } catch (const UsageError&) {
      continue;  // the check of sweep.methods says what is wrong with it
    }
    bool listed = false;
    for (const auto& spec : c.sweep.llm_models) listed = listed || parse_llm_model(spec).name == label;
    if (!listed)
      c.sweep.llm_models.push_back(label + "=" + (r.model_name.empty() ? label : r.model_name) + "@" + r.base_url);
  }
}

}  // namespace

void declare_options(Options& options, SweepConfig& c) {
  options.disable_aliases();
  auto& s = c.sweep;
  options.add("sweep.plan", &s.plan, "what to run: study (the paper's pipeline) or probe (trivial tasks that test "
                                     "the runner)")
      .choices({"study", "probe"});
  options.add("sweep.methods", &s.methods, "CF methods (see `sensecf explain --help` for the list)");
  options.add("sweep.scenarios", &s.scenarios, "label-scarcity scenarios besides the full training set: "
                                               "positive, negative, dual");
  options.add("sweep.fraction", &s.fraction, "share of the scarce class(es) removed from the training rows");
  options.add("sweep.ratios", &s.ratios, "augmentation ratios: CFs added = ratio x rows removed");
  options.add("sweep.seeds", &s.seeds, "seeds: each gives its own split, classifiers and CFs");
  options.add("sweep.queries", &s.queries, "Table III: test rows explained per method (0: all)");
  options.add("sweep.oversample", &s.oversample, "augmentation: queries per CF needed (>= 1)");
  options.add("sweep.fig1_models", &s.fig1_models, "Fig. 1 classifiers (nn, xgb, rf, svm)");
  options.add("sweep.fig1_reductions", &s.fig1_reductions,
              "Fig. 1 reductions of the training patients (empty: no Fig. 1)");
  options.add("sweep.llm_models", &s.llm_models,
              "LLMs to fine-tune per (seed, scenario): name=DIR or name=DIR:quant (none, nf4, nf4-dq)");
  options.add("sweep.llm_targets", &s.llm_targets,
              "fine-tuning targets: nearest (unlike neighbour, same immutables) or a baseline method (its valid CFs)");
  options.add("sweep.augment_methods", &s.augment_methods,
              "methods whose CFs augment the scarce training sets (empty: all of sweep.methods)");
  options.add("sweep.llm_self_rounds", &s.llm_self_rounds,
              "llm_targets = self: rounds of (generate verified CFs of the training rows, fine-tune on them)");
  options.add("sweep.llm_seeds", &s.llm_seeds, "seeds whose splits get the LLM tasks (empty: every seed)");
  options.add("pretrain.merges", &c.pretrain.merges, "@tiny models: BPE merges learned from the training rows' text");
  options.add("pretrain.hidden_size", &c.pretrain.hidden_size, "@tiny models: hidden size");
  options.add("pretrain.intermediate_size", &c.pretrain.intermediate_size, "@tiny models: MLP size");
  options.add("pretrain.layers", &c.pretrain.layers, "@tiny models: decoder layers");
  options.add("pretrain.epochs", &c.pretrain.epochs, "@tiny models: passes over the corpus");
  options.add("pretrain.max_steps", &c.pretrain.max_steps, "@tiny models: at most this many steps (0: epochs decide)");
  options.add("pretrain.batch_size", &c.pretrain.batch_size, "@tiny models: documents per step");
  options.add("pretrain.lr", &c.pretrain.lr, "@tiny models: peak learning rate (AdamW, warmup + cosine)");
  options.add("sweep.finetune_ranks", &s.finetune_ranks, "ranks that train one adapter together (data parallel)");
  options.add("sweep.probe_tasks", &s.probe_tasks, "probe plan: number of tasks");
  options.add("sweep.probe_ms", &s.probe_ms, "probe plan: milliseconds each task sleeps");
  options.add("sweep.probe_fail", &s.probe_fail, "probe plan: task indices that always fail");
  options.add("sweep.probe_flaky", &s.probe_flaky, "probe plan: task indices that fail on their first attempt");
  options.add("sweep.probe_gang", &s.probe_gang, "probe plan: task indices that run on a gang of 2 ranks");
  options.add("sweep.max_attempts", &s.max_attempts, "attempts per task before it counts as failed")
      .not_hashed();
  options.add("sweep.grace", &s.grace, "seconds running tasks get to finish after SIGTERM/SIGUSR1").not_hashed();
  options.add("sweep.progress", &s.progress, "seconds between progress lines on rank 0").not_hashed();
  data::declare_options(options, c.data);
  data::declare_options(options, c.synth);
  options.add("data.split", &c.split,
              "patient split: random (stratified, per seed) or recommended (participants.tsv's recommended_split: "
              "test vs train+val; needs the table's .windows.csv, which ingest writes)")
      .choices({"random", "recommended"});
  ingest::declare_options(options, c.ingest);
  options.add("ingest.participants_per_task", &c.ingest_participants_per_task,
              "data.source = aireadi: participants per ingest task (the tasks run on all workers at once)")
      .not_hashed();
  options.add("ingest.cache", &c.ingest_cache,
              "data.source = aireadi: folder of finished feature tables by fingerprint, shared across sweeps "
              "(auto: $XDG_CACHE_HOME/sensecf/aireadi or ~/.cache/sensecf/aireadi; none: no cache)")
      .not_hashed();
  clf::declare_options(options, c.clf);
  cf::declare_options(options, c.cf);
  // lm.base_url / lm.model_name: a remote model for the LLM methods whose
  // model sweep.llm_models does not list (as `explain` takes them); several
  // servers: sweep.llm_models name=URL entries.
  remote::declare_options(options, c.cf.llm.remote, /*with_endpoint=*/true);
  // Set per task by the sweep's axes.
  options.erase("clf.model");
  options.erase("clf.seed");
  options.erase("cf.method");
  options.erase("cf.seed");
  llm::declare_options(options, c.finetune);
  // Set per task: the model and its quantisation (sweep.llm_models), the data
  // and output (the task's directory), the device (the worker's).
  for (const char* key : {"finetune.model", "finetune.data", "finetune.eval_data", "finetune.out", "finetune.resume",
                          "lm.device", "lm.quant", "lm.cuda_graph"})
    options.erase(key);
  options.enable_aliases();
  // The short forms a sweep shares with the other commands: --data FILE (or
  // the AI-READI folder), --seed 1,2,3 (the list of seeds).
  options.set_alias("data.path", "data");
  options.set_alias("sweep.seeds", "seed");
  llmcf::register_methods();  // sweep.methods may name llm:<model>:<mode>
  options.add_check([&c] {
    add_endpoint_models(c);
    const auto& sw = c.sweep;
    // A list that names an entry twice would plan the same task twice: say which.
    auto unique = [](const char* key, const auto& list) {
      for (std::size_t i = 0; i < list.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
          if (list[i] == list[j]) {
            throw UsageError(fmt::format("{} lists {} twice", key, list[i]),
                             fmt::format("each entry of {} once", key));
          }
    };
    unique("sweep.methods", sw.methods);
    unique("sweep.scenarios", sw.scenarios);
    unique("sweep.ratios", sw.ratios);
    unique("sweep.seeds", sw.seeds);
    unique("sweep.llm_seeds", sw.llm_seeds);
    unique("sweep.augment_methods", sw.augment_methods);
    unique("sweep.fig1_models", sw.fig1_models);
    unique("sweep.fig1_reductions", sw.fig1_reductions);
    {
      std::vector<std::string> names;
      for (const auto& spec : sw.llm_models) names.push_back(parse_llm_model(spec).name);
      unique("sweep.llm_models (model names)", names);
    }
    for (const auto& m : sw.methods) {
      try {
        cf::check_method_name(m);
      } catch (const UsageError& e) {
        throw UsageError("sweep.methods: " + std::string(e.what()), e.hint());
      }
      if (is_llm_method(m) && llm_model_of(m, sw.llm_models).remote() &&
          llmcf::parse_method(m).mode == llmcf::kFineTuned)
        throw UsageError("sweep.methods: '" + m + "' fine-tunes a remote model",
                         "remote models (sweep.llm_models name=URL) run zero-shot and few-shot; fine-tune a local "
                         "model (name=DIR) instead");
    }
    for (const auto& sc : sw.scenarios) {
      if (!vocab::is_scarce_scenario(sc))
        throw UsageError("sweep.scenarios: unknown scenario '" + sc + "'", "use positive, negative and/or dual");
    }
    if (sw.plan == "study") data::check_source(c.data, "sweep");
    if (data::parse_source(c.data.source) == data::Source::kAiReadi) c.ingest.root = c.data.path;
    if (c.ingest_participants_per_task < 1) {
      throw UsageError(
          fmt::format("ingest.participants_per_task must be >= 1, got {}", c.ingest_participants_per_task),
          "e.g. ingest.participants_per_task = 100 (the default)");
    }
    for (const auto& m : sw.fig1_models) {
      if (m != "nn" && m != "xgb" && m != "rf" && m != "svm")
        throw UsageError("sweep.fig1_models: unknown classifier '" + m + "'", "use nn, xgb, rf and/or svm");
    }
    for (double r : sw.ratios)
      if (!(r > 0 && r <= 1))
        throw UsageError(fmt::format("sweep.ratios: {} is not in (0, 1]", r),
                         "e.g. ratios = 0.2, 0.4, 0.6, 0.8, 1.0 (the default)");
    for (double r : sw.fig1_reductions)
      if (!(r >= 0 && r < 1))
        throw UsageError(fmt::format("sweep.fig1_reductions: {} is not in [0, 1)", r),
                         "e.g. fig1_reductions = 0.1, 0.3, 0.5; leave it empty for no Fig. 1");
    if (!(sw.fraction > 0 && sw.fraction < 1))
      throw UsageError(fmt::format("sweep.fraction must be in (0, 1), got {}", sw.fraction),
                       "e.g. fraction = 0.5 (the default)");
    if (sw.seeds.empty()) throw UsageError("sweep.seeds is empty", "give at least one seed, e.g. seeds = 1");
    for (const auto& spec : sw.llm_models) {
      const auto m = parse_llm_model(spec);
      const auto& r = c.cf.llm.remote;
      if (sw.plan == "study" && m.remote() && m.path.rfind("https://", 0) == 0 && !r.offline) {
        const char* key = std::getenv(r.api_key_env.c_str());
        if (!key || !*key)
          throw UsageError("sweep.llm_models: '" + m.name + "' is served by " + m.path + ", but $" + r.api_key_env +
                               " holds no API key",
                           "export " + r.api_key_env + "=... (or name another variable with lm.api_key_env), or "
                           "drop the model from sweep.llm_models and sweep.methods");
      }
      if (sw.plan == "study" && !m.remote() && m.path != kTinyModelPath &&
          !std::filesystem::exists(m.path + "/config.json"))
        throw UsageError("sweep.llm_models: '" + spec + "': no config.json in '" + m.path + "'",
                         "download the checkpoint (Hugging Face layout: config.json, weights, tokenizer.json) and "
                         "point llm_models at its directory, or name=@tiny for a tiny model the sweep trains itself");
    }
    if (sw.llm_targets != "nearest" && sw.llm_targets != "self") {
      const auto names = cf::method_names();
      if (std::find(names.begin(), names.end(), sw.llm_targets) == names.end())
        throw UsageError("sweep.llm_targets: '" + sw.llm_targets + "' is neither nearest, self nor a baseline method",
                         "e.g. llm_targets = nice");
    }
    if (sw.llm_self_rounds < 1)
      throw UsageError(fmt::format("sweep.llm_self_rounds must be at least 1, got {}", sw.llm_self_rounds),
                       "e.g. llm_self_rounds = 1 (the default)");
    for (const auto& m : sw.augment_methods) {
      if (std::find(sw.methods.begin(), sw.methods.end(), m) == sw.methods.end())
        throw UsageError(
            "sweep.augment_methods: '" + m + "' is not one of sweep.methods",
            "add it to sweep.methods, or leave augment_methods empty to augment with all of sweep.methods");
    }
    for (int seed : sw.llm_seeds) {
      if (std::find(sw.seeds.begin(), sw.seeds.end(), seed) == sw.seeds.end())
        throw UsageError(fmt::format("sweep.llm_seeds: {} is not one of sweep.seeds", seed),
                         "add it to sweep.seeds, or leave llm_seeds empty for every seed");
    }
    if (c.pretrain.epochs < 1 || c.pretrain.batch_size < 1 || c.pretrain.layers < 1 || c.pretrain.merges < 0 ||
        !(c.pretrain.lr > 0))
      throw UsageError(
          fmt::format("[pretrain]: epochs, batch_size and layers must be at least 1, lr positive, merges >= "
                      "0; got epochs {}, batch_size {}, layers {}, lr {}, merges {}",
                      c.pretrain.epochs, c.pretrain.batch_size, c.pretrain.layers, c.pretrain.lr,
                      c.pretrain.merges),
          "the defaults are epochs = 1, batch_size = 8, layers = 2, lr = 0.003, merges = 1000");
    if (sw.finetune_ranks < 1)
      throw UsageError(fmt::format("sweep.finetune_ranks must be at least 1, got {}", sw.finetune_ranks),
                       "e.g. finetune_ranks = 1 (the default: one rank per adapter)");
    if (sw.oversample < 1)
      throw UsageError(fmt::format("sweep.oversample must be >= 1, got {}", sw.oversample),
                       "e.g. oversample = 1.5 (the default)");
    if (sw.queries < 0)
      throw UsageError(fmt::format("sweep.queries must be >= 0, got {}", sw.queries),
                       "e.g. queries = 100 (the default), or 0 for all test rows");
    if (sw.max_attempts < 1)
      throw UsageError(fmt::format("sweep.max_attempts must be >= 1, got {}", sw.max_attempts),
                       "e.g. max_attempts = 3 (the default)");
    if (sw.probe_tasks < 0)
      throw UsageError(fmt::format("sweep.probe_tasks must be >= 0, got {}", sw.probe_tasks),
                       "e.g. probe_tasks = 100 (the default)");
  });
}

std::string task_key(const std::string& kind, const nlohmann::json& params) {
  return fnv1a_hex(kind + "\n" + params.dump());
}

std::string Task::param(const char* name) const {
  const auto it = params.find(name);
  if (it == params.end()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string Task::label() const {
  std::string out = kind;
  for (const char* name : {"method", "model", "scenario", "purpose"}) {
    const auto v = param(name);
    if (!v.empty()) out += " " + v;
  }
  if (params.contains("ratio")) out += fmt::format(" ratio={}", params["ratio"].get<double>());
  if (params.contains("reduction")) out += fmt::format(" reduction={}", params["reduction"].get<double>());
  if (params.contains("seed")) out += " seed=" + param("seed");
  if (params.contains("index")) out += " #" + param("index");
  if (params.contains("first") && params.contains("last")) out += " participants " + param("first") + "-" + param("last");
  return out;
}

bool Task::has_input(const char* name) const {
  for (const auto& input : inputs)
    if (input.first == name) return true;
  return false;
}

const std::string& Task::input(const char* name) const {
  for (const auto& [input_name, input_key] : inputs)
    if (input_name == name) return input_key;
  throw Error(fmt::format("{}: has no input '{}'", label(), name), "the plan and the task kind disagree: a bug");
}

const Task& PlanBuilder::add(const std::string& kind, nlohmann::json params,
                             std::vector<std::pair<std::string, std::string>> inputs, double cost, int ranks) {
  Task t;
  t.key = task_key(kind, params);
  t.kind = kind;
  t.params = std::move(params);
  for (const auto& [name, key] : inputs) {
    if (!index_.count(key))
      throw Error(fmt::format("internal error: {} reads '{}' from task {}, which is not in the plan before it",
                              t.label(), name, key));
    t.deps.push_back(key);
  }
  t.inputs = std::move(inputs);
  t.cost = cost;
  t.ranks = ranks;
  if (index_.count(t.key)) throw Error("internal error: duplicate task " + t.label());
  index_[t.key] = tasks_.size();
  tasks_.push_back(std::move(t));
  return tasks_.back();
}

namespace kinds {

std::vector<SplitParams> study_splits(const SweepConfig& config) {
  const auto& s = config.sweep;
  std::vector<SplitParams> out;
  for (int seed : s.seeds) {
    out.push_back({seed, vocab::kFull, 0.0});
    for (const auto& scenario : s.scenarios) out.push_back({seed, scenario, s.fraction});
  }
  return out;
}

}  // namespace kinds

std::vector<Task> build_plan(const SweepConfig& config) {
  PlanBuilder plan;
  for (const auto* kind : task_kinds()) {
    if (config.sweep.plan == kind->plan()) kind->expand(config, plan);
  }
  return plan.take();
}

bool augments(const SweepOptions& s, const std::string& method) {
  return s.augment_methods.empty() ||
         std::find(s.augment_methods.begin(), s.augment_methods.end(), method) != s.augment_methods.end();
}

bool is_llm_method(const std::string& method) { return method.rfind("llm:", 0) == 0; }

std::vector<int> llm_seeds(const SweepOptions& s) { return s.llm_seeds.empty() ? s.seeds : s.llm_seeds; }

LlmModelSpec llm_model_of(const std::string& method, const std::vector<std::string>& llm_models) {
  const auto start = std::string("llm:").size();
  const auto end = method.find(':', start);
  const std::string name = method.substr(start, end == std::string::npos ? std::string::npos : end - start);
  std::vector<std::string> names;
  for (const auto& spec : llm_models) {
    auto m = parse_llm_model(spec);
    if (m.name == name) return m;
    names.push_back(m.name);
  }
  throw UsageError("sweep.methods: '" + method + "' names the model '" + name + "', which sweep.llm_models lacks",
                   names.empty() ? "add it: sweep.llm_models = " + name + "=DIR (or " + name + "=@tiny)"
                                 : "sweep.llm_models has " + join(names, ", "));
}

LlmModelSpec parse_llm_model(const std::string& spec) {
  const auto eq = spec.find('=');
  const std::string hint =
      "write name=DIR or name=DIR:quant (a local model, e.g. llama=/models/Llama-3.1-8B-Instruct:nf4-dq), name=@tiny, "
      "or name=URL / name=MODEL@URL (a server, e.g. gpt-4o=https://api.openai.com/v1)";
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    throw UsageError("sweep.llm_models: '" + spec + "' is not name=DIR", hint);
  LlmModelSpec m;
  m.name = spec.substr(0, eq);
  m.path = spec.substr(eq + 1);
  if (const auto at = m.path.find("@http"); at != std::string::npos && at > 0) {
    m.model_name = m.path.substr(0, at);
    m.path = m.path.substr(at + 1);
  }
  if (m.remote() && m.model_name.empty()) m.model_name = m.name;
  for (const char* q : {"none", "nf4-dq", "nf4"}) {
    if (m.remote()) break;
    const std::string suffix = std::string(":") + q;
    if (m.path.size() > suffix.size() && m.path.compare(m.path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      m.quant = q;
      m.path.resize(m.path.size() - suffix.size());
      break;
    }
  }
  for (char ch : m.name) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_'))
      throw UsageError("sweep.llm_models: model name '" + m.name + "' may hold letters, digits, '-', '.', '_' only",
                       hint);
  }
  return m;
}

}  // namespace sensecf::sweep
