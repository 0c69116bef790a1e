// generate: CFs of one method for one purpose, with their metrics computed on
// the CFs in memory.
//   table3   (scenario full): sweep.queries test rows, the prediction flipped
//   augment  (scarce scenarios): kept training rows that f_s assigns to the
//            other class, to be flipped into each scarce class; enough for the
//            largest ratio times sweep.oversample
// LLM methods (llm:<model>:<mode>, llmcf/generator.h) run only on the seeds
// of sweep.llm_seeds; they also read the model's pretrain_lm task ("base",
// for an @tiny model) and, fine-tuned, the split's finetune task ("adapter").
// Artefact: cfs.json (a CF set, task_io.h), read by augment.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common.h"
#include "kinds.h"
#include "sensecf/cf/explain.h"
#include "sensecf/clf/nn.h"
#include "sensecf/core/random.h"
#include "sensecf/llmcf/generator.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

// Rough seconds per query on one core (measured on the default cohort; only the
// order matters: the scheduler starts long chains first).
// Seconds per query on one CPU core, measured on the quickstart's tasks (the
// tiny model for LLM methods; a GPU with an 8B model, or a server, is of the
// same order per query). Only the plan's estimate and the scheduler's order
// use them; the progress ETA rescales them with measured times.
double seconds_per_query(const std::string& method, const SweepConfig& config) {
  if (is_llm_method(method)) {
    if (method.find("+verify") != std::string::npos || method.find("few-shot") != std::string::npos) return 0.04;
    return 0.015;
  }
  // DiCE's gradient search runs up to max_iter steps (0.017 s at the quickstart's 100).
  if (method == "dice-gradient") return 0.017 * std::max(1.0, config.cf.dice.gradient_max_iter / 100.0);
  if (method == "cfnow-random" || method == "cfnow-random-sequential") return 0.018;
  if (method == "cfnow-greedy") return 0.0015;
  if (method == "dice-random") return 0.0005;
  return 0.0001;  // nice, dice-genetic, dice-kdtree
}

struct Queries {
  std::vector<std::size_t> rows;
  std::vector<int> targets;
};

Queries table3_queries(int seed, const TaskEnv& env, const SplitRows& rows, const data::Dataset& d,
                       const cf::BlackBox& f) {
  std::vector<std::size_t> test = rows.test;
  Rng rng(derive_seed(static_cast<std::uint64_t>(seed), "table3-queries"));
  rng.shuffle(test);
  const auto limit = static_cast<std::size_t>(env.config->sweep.queries);
  if (limit > 0 && test.size() > limit) test.resize(limit);
  std::sort(test.begin(), test.end());
  Queries q;
  q.rows = test;
  q.targets = cf::flip_targets(f, d.x.rows(test));
  return q;
}

Queries augment_queries(const SplitParams& p, const TaskEnv& env, const SplitRows& rows, const data::Dataset& d,
                        const cf::BlackBox& f) {
  const auto& s = env.config->sweep;
  const double max_ratio = *std::max_element(s.ratios.begin(), s.ratios.end());
  const auto prob = f.predict_proba(d.x.rows(rows.kept));
  Queries q;
  for (int c : scarce_classes(p.scenario)) {
    const std::size_t removed = d.count_label(c, rows.removed);
    const auto needed = static_cast<std::size_t>(std::ceil(max_ratio * static_cast<double>(removed)));
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < rows.kept.size(); ++i) {
      if ((prob[i] > 0.5 ? 1 : 0) != c) candidates.push_back(rows.kept[i]);
    }
    Rng rng(derive_seed(static_cast<std::uint64_t>(p.seed), "augment-queries/" + std::to_string(c)));
    rng.shuffle(candidates);
    const auto n = std::min(candidates.size(),
                            static_cast<std::size_t>(std::ceil(s.oversample * static_cast<double>(needed))));
    for (std::size_t i = 0; i < n; ++i) {
      q.rows.push_back(candidates[i]);
      q.targets.push_back(c);
    }
  }
  return q;
}

// The columns that name the task in each of its rows: key, method, scenario,
// purpose, seed (CfArrays, CfMetricRow, UsageRow).
template <class Row>
Row task_row(const Task& task, const GenerateParams& p) {
  Row r;
  r.key = task.key;
  r.method = p.method;
  r.scenario = p.split.scenario;
  r.purpose = p.purpose;
  r.seed = p.split.seed;
  return r;
}

store::CfArrays cf_arrays(const Task& task, const GenerateParams& p, const data::Dataset& d, const Queries& q,
                          const std::vector<cf::QueryResult>& results) {
  auto a = task_row<store::CfArrays>(task, p);
  a.features = d.schema.names();
  a.n = q.rows.size();
  a.d = d.schema.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  a.counterfactual.assign(a.n * a.d, nan);
  a.probability.assign(a.n, nan);
  a.valid.assign(a.n, 0);
  a.found.assign(a.n, 0);
  a.answer.assign(a.n, "");
  a.schema = d.schema.to_json().dump();  // category names, the split's training bounds, immutables, units
  for (std::size_t i = 0; i < a.n; ++i) {
    a.query_row.push_back(static_cast<long long>(q.rows[i]));
    a.patient.push_back(d.group[q.rows[i]]);
    a.target.push_back(q.targets[i]);
    const double* x = d.x.row(q.rows[i]);
    a.factual.insert(a.factual.end(), x, x + a.d);
  }
  for (const auto& r : results) {
    if (!r.answers.empty()) a.answer[r.query] = r.answers.front();
    if (r.cfs.empty()) continue;
    const auto& c = r.cfs.front();
    std::copy(c.x.begin(), c.x.end(), a.counterfactual.begin() + static_cast<long>(r.query * a.d));
    a.probability[r.query] = c.p1;
    a.valid[r.query] = c.valid ? 1 : 0;
    a.found[r.query] = 1;
  }
  return a;
}

store::UsageRow usage_row(const Task& task, const GenerateParams& p, const std::map<std::string, double>& u) {
  auto r = task_row<store::UsageRow>(task, p);
  auto count = [&u](const char* name) {
    const auto it = u.find(name);
    return it == u.end() ? 0LL : static_cast<long long>(std::llround(it->second));
  };
  r.requests = count("requests");
  r.answers = count("answers");
  r.cache_hits = count("cache_hits");
  r.retries = count("retries");
  r.failures = count("failures");
  r.prompt_tokens = count("prompt_tokens");
  r.completion_tokens = count("completion_tokens");
  r.cost_usd = u.count("cost_usd") ? u.at("cost_usd") : 0.0;
  r.seconds = u.count("seconds") ? u.at("seconds") : 0.0;
  spdlog::info("{}: {} answers ({} from the cache), {} requests ({} retries, {} given up), {} + {} tokens, ~${:.4f}",
               task.label(), r.answers, r.cache_hits, r.requests, r.retries, r.failures, r.prompt_tokens,
               r.completion_tokens, r.cost_usd);
  return r;
}

store::CfMetricRow cf_row(const Task& task, const GenerateParams& p, int cls, const cf::CfMetrics& m) {
  auto r = task_row<store::CfMetricRow>(task, p);
  r.factual_class = cls;
  r.n_queries = static_cast<long long>(m.n_queries);
  r.n_cfs = static_cast<long long>(m.n_cfs);
  r.coverage = m.coverage;
  r.validity = m.validity;
  r.validity_returned = m.validity_returned;
  r.parse_rate = m.parse_rate;
  r.distance = m.distance;
  r.sparsity = m.sparsity;
  r.plausibility = m.plausibility;
  r.ynn = m.ynn;
  r.knn_distance = m.knn_distance;
  r.violations = m.violations;
  r.redundancy = m.redundancy;
  r.seconds_per_query = m.seconds_per_query;
  return r;
}

class Generate final : public TaskKind {
 public:
  const char* name() const override { return vocab::kGenerate; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    const auto& s = config.sweep;
    // Rough size of the query sets, for cost estimates only.
    const bool synth = config.data.source == "synth";
    const double rows = synth ? config.synth.n_participants * config.synth.windows_per_participant : 4000.0;
    const double max_ratio = s.ratios.empty() ? 0.0 : *std::max_element(s.ratios.begin(), s.ratios.end());
    for (const auto& split : study_splits(config)) {
      const bool table3 = split.full();
      if (!table3 && s.ratios.empty()) continue;  // augmentation CFs with no ratio to use them
      const double n_queries = table3 ? (s.queries > 0 ? s.queries : 0.2 * rows)
                                      : 0.8 * rows * 0.25 * s.fraction * max_ratio * s.oversample;
      for (const auto& method : s.methods) {
        if (!table3 && !augments(s, method)) continue;
        const GenerateParams p{split, method, table3 ? vocab::kTable3 : vocab::kForAugment};
        std::vector<std::pair<std::string, std::string>> inputs{{"rows", prepare_key(split)},
                                                                {"clf", train_clf_key(split)}};
        if (is_llm_method(method)) {
          if (!llm_seed(config, split.seed)) continue;
          const auto m = llm_model_of(method, s.llm_models);
          add_base_input(config, m, inputs);
          if (llmcf::parse_method(method).mode == llmcf::kFineTuned)
            inputs.emplace_back("adapter", finetune_key(finetune_params(config, split, m)));
        }
        plan.add(name(), p.to_json(), inputs, 0.2 + n_queries * seconds_per_query(method, config));
      }
    }
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = GenerateParams::from(task);
    const SplitRows rows = read_split_rows(input_dir(task, env.workdir, "rows"), task);
    const auto trained = WorkerCache::instance().model(input_dir(task, env.workdir, "clf") + "/clf");
    data::Dataset d = sweep_dataset(env);
    d.schema = trained->schema;  // bounds learned from this split's training rows by train_clf
    const data::Matrix train_x = d.x.rows(rows.kept);
    const std::vector<int> train_y = labels(d, rows.kept);
    clf::set_torch_threads(1);  // parallel over queries instead
    cf::BlackBox f(*trained->model);
    const cf::Context context{&f, &d.schema, &train_x, &train_y};
    const Queries q = p.purpose == vocab::kTable3 ? table3_queries(p.split.seed, env, rows, d, f)
                                                  : augment_queries(p.split, env, rows, d, f);

    cf::CfOptions o = env.config->cf;
    o.method = p.method;
    o.seed = static_cast<unsigned long>(p.split.seed);
    o.threads = env.threads;
    if (is_llm_method(p.method)) {
      const auto m = llm_model_of(p.method, env.config->sweep.llm_models);
      o.llm.remote.base_url.clear();  // per model, from its sweep.llm_models entry
      if (m.remote()) {
        // A server: every answer goes through the run's response cache, so a
        // resumed or repeated sweep re-pays nothing.
        o.llm.remote.base_url = m.path;
        o.llm.remote.model_name = m.model_name;
        if (o.llm.remote.cache_dir.empty()) o.llm.remote.cache_dir = env.workdir + "/llm-cache";
      }
      o.llm.model_dir = m.remote() ? "" : m.path == kTinyModelPath ? input_dir(task, env.workdir, "base") + "/model" : m.path;
      o.llm.quant = m.quant;
      o.llm.device = env.device;
      o.llm.dtype = env.config->finetune.model.dtype;
      o.llm.adapter = llmcf::parse_method(p.method).mode == llmcf::kFineTuned
                          ? input_dir(task, env.workdir, "adapter") + "/adapter"
                          : "";
    }
    const data::Matrix query_x = d.x.rows(q.rows);
    const cf::ExplainRun run = cf::explain_rows(o, context, query_x, q.targets);

    store::TaskOutput out;
    for (const auto& [cls, m] : run.by_class) out.cf.push_back(cf_row(task, p, cls, m));
    auto arrays = cf_arrays(task, p, d, q, run.results);
    const std::string dir = task_dir(env.workdir, task.key);
    write_cf_set(dir, arrays);
    out.counterfactuals.push_back(std::move(arrays));
    out.artifacts["cfs"] = dir + "/cfs.json";
    if (!run.usage.empty()) out.usage.push_back(usage_row(task, p, run.usage));
    return out;
  }
};

}  // namespace

const TaskKind& generate_kind() {
  static const Generate kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
