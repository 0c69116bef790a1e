// Sweep options and the task DAG.
#include "sensecf/sweep/plan.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <map>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/split.h"

namespace sensecf::sweep {

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
  clf::declare_options(options, c.clf);
  cf::declare_options(options, c.cf);
  // Set per task by the sweep's axes.
  options.erase("clf.model");
  options.erase("clf.seed");
  options.erase("cf.method");
  options.erase("cf.seed");
  options.enable_aliases();
  options.add_check([&c] {
    const auto& sw = c.sweep;
    const auto methods = cf::method_names();
    for (const auto& m : sw.methods) {
      if (std::find(methods.begin(), methods.end(), m) == methods.end()) {
        const std::string best = closest_match(m, methods);
        throw UsageError("sweep.methods: unknown method '" + m + "'" +
                         (best.empty() ? "" : "; did you mean '" + best + "'?"));
      }
    }
    for (const auto& sc : sw.scenarios) {
      if (sc != "positive" && sc != "negative" && sc != "dual")
        throw UsageError("sweep.scenarios: unknown scenario '" + sc + "'", "use positive, negative and/or dual");
    }
    for (const auto& m : sw.fig1_models) {
      if (m != "nn" && m != "xgb" && m != "rf" && m != "svm")
        throw UsageError("sweep.fig1_models: unknown classifier '" + m + "'", "use nn, xgb, rf and/or svm");
    }
    for (double r : sw.ratios)
      if (!(r > 0 && r <= 1)) throw UsageError(fmt::format("sweep.ratios: {} is not in (0, 1]", r));
    for (double r : sw.fig1_reductions)
      if (!(r >= 0 && r < 1)) throw UsageError(fmt::format("sweep.fig1_reductions: {} is not in [0, 1)", r));
    if (!(sw.fraction > 0 && sw.fraction < 1)) throw UsageError("sweep.fraction must be in (0, 1)");
    if (sw.seeds.empty()) throw UsageError("sweep.seeds is empty", "give at least one seed, e.g. seeds = 1");
    if (sw.oversample < 1) throw UsageError("sweep.oversample must be >= 1");
    if (sw.queries < 0) throw UsageError("sweep.queries must be >= 0");
    if (sw.max_attempts < 1) throw UsageError("sweep.max_attempts must be >= 1");
    if (sw.probe_tasks < 0) throw UsageError("sweep.probe_tasks must be >= 0");
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
  return out;
}

namespace {

class PlanBuilder {
 public:
  const Task& add(std::string kind, nlohmann::json params, std::vector<std::string> deps, double cost,
                  int ranks = 1) {
    Task t;
    t.key = task_key(kind, params);
    t.kind = std::move(kind);
    t.params = std::move(params);
    t.deps = std::move(deps);
    t.cost = cost;
    t.ranks = ranks;
    if (index_.count(t.key)) throw Error("internal error: duplicate task " + t.label());
    index_[t.key] = tasks_.size();
    tasks_.push_back(std::move(t));
    return tasks_.back();
  }
  std::vector<Task> take() { return std::move(tasks_); }

 private:
  std::vector<Task> tasks_;
  std::map<std::string, std::size_t> index_;
};

// Rough seconds per query on one core (measured on the default cohort; only the
// order matters: the scheduler starts long chains first).
double seconds_per_query(const std::string& method) {
  if (method == "dice-gradient") return 0.6;
  if (method == "cfnow-random" || method == "cfnow-random-sequential") return 0.04;
  if (method == "cfnow-greedy") return 0.005;
  if (method == "dice-random") return 0.002;
  return 0.0005;
}

void build_study(const SweepConfig& c, PlanBuilder& plan) {
  const auto& s = c.sweep;
  std::vector<std::string> scenarios = {"full"};
  scenarios.insert(scenarios.end(), s.scenarios.begin(), s.scenarios.end());
  // Rough size of the query sets, for cost estimates only.
  const double rows = c.data.path.empty() ? c.synth.n_participants * c.synth.windows_per_participant : 4000.0;
  const double max_ratio = s.ratios.empty() ? 0.0 : *std::max_element(s.ratios.begin(), s.ratios.end());
  for (int seed : s.seeds) {
    for (const auto& scenario : scenarios) {
      const double fraction = scenario == "full" ? 0.0 : s.fraction;
      const auto& prepare =
          plan.add("prepare", {{"seed", seed}, {"scenario", scenario}, {"fraction", fraction}}, {}, 0.1);
      const std::string prepare_key = prepare.key;
      const auto& train = plan.add("train_clf", {{"seed", seed}, {"scenario", scenario}, {"fraction", fraction}},
                                   {prepare_key}, 3.0);
      const std::string train_key = train.key;
      if (scenario == "full") {
        for (const auto& model : s.fig1_models) {
          std::vector<double> reductions = s.fig1_reductions;
          if (!reductions.empty() && std::find(reductions.begin(), reductions.end(), 0.0) == reductions.end())
            reductions.insert(reductions.begin(), 0.0);
          for (double r : reductions) {
            plan.add("fig1", {{"seed", seed}, {"model", model}, {"reduction", r}}, {prepare_key},
                     model == "nn" ? 2.5 : 0.5);
          }
        }
      }
      for (const auto& method : s.methods) {
        const bool table3 = scenario == "full";
        const double n_queries = table3 ? (s.queries > 0 ? s.queries : 0.2 * rows)
                                        : 0.8 * rows * 0.25 * s.fraction * max_ratio * s.oversample;
        if (!table3 && s.ratios.empty()) continue;  // augmentation CFs with no ratio to use them
        const auto& gen = plan.add("generate",
                                   {{"seed", seed},
                                    {"scenario", scenario},
                                    {"fraction", fraction},
                                    {"method", method},
                                    {"purpose", table3 ? "table3" : "augment"}},
                                   {prepare_key, train_key}, 0.2 + n_queries * seconds_per_query(method));
        const std::string gen_key = gen.key;
        if (table3) continue;
        for (double ratio : s.ratios) {
          plan.add("augment",
                   {{"seed", seed}, {"scenario", scenario}, {"fraction", fraction}, {"method", method},
                    {"ratio", ratio}},
                   {prepare_key, train_key, gen_key}, 3.0);
        }
      }
    }
  }
}

void build_probe(const SweepOptions& s, PlanBuilder& plan) {
  auto has = [](const std::vector<int>& v, int i) { return std::find(v.begin(), v.end(), i) != v.end(); };
  for (int i = 0; i < s.probe_tasks; ++i) {
    plan.add("probe", {{"index", i}}, {}, s.probe_ms / 1000.0, has(s.probe_gang, i) ? 2 : 1);
  }
}

}  // namespace

std::vector<Task> build_plan(const SweepConfig& config) {
  PlanBuilder plan;
  if (config.sweep.plan == "probe") {
    build_probe(config.sweep, plan);
  } else {
    build_study(config, plan);
  }
  return plan.take();
}

}  // namespace sensecf::sweep
