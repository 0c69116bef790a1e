// The CF generator interface's shared parts: [cf] options, the method factory,
// the black-box wrapper, constraints and the runner over a batch of queries
// (the default explain_batch: a parallel loop of explain()).
#include "sensecf/cf/generator.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <thread>

#include "sensecf/cf/cfnow.h"
#include "sensecf/cf/dice.h"
#include "sensecf/cf/nice.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"

namespace sensecf::cf {

std::vector<std::string> method_names() {
  return {"nice",         "nice-none",    "nice-sparsity", "nice-proximity", "nice-plausibility",
          "dice-random",  "dice-genetic", "dice-kdtree",   "dice-gradient",  "cfnow-greedy",
          "cfnow-random", "cfnow-random-sequential"};
}

void declare_options(Options& options, CfOptions& cf) {
  options.add("cf.method", &cf.method,
              "counterfactual method ('nice' = nice-sparsity, NICEx's default; llm:<model>:<mode> for an LLM)",
              "method");
  options.add("cf.n_cfs", &cf.n_cfs, "counterfactuals wanted per query", "n-cfs");
  options.add("cf.seed", &cf.seed, "random seed (per query: derived from seed and query index)");
  options.add("cf.threads", &cf.threads, "threads over queries (0: all cores)", "threads").not_hashed();
  options.add("cf.time_limit", &cf.time_limit, "seconds per query", "time-limit");
  options.add("cf.dice_sample_size", &cf.dice.sample_size, "DiCE random: sampled candidates");
  options.add("cf.dice_posthoc_sparsity", &cf.dice.posthoc_sparsity, "DiCE: post-hoc sparsity quantile (0: off)");
  options.add("cf.dice_posthoc_algorithm", &cf.dice.posthoc_algorithm, "DiCE: post-hoc sparsity search")
      .choices({"linear", "binary"});
  options.add("cf.dice_max_iterations", &cf.dice.max_iterations, "DiCE genetic: maximum generations");
  options.add("cf.dice_proximity_weight", &cf.dice.proximity_weight, "DiCE genetic: proximity weight");
  options.add("cf.dice_sparsity_weight", &cf.dice.sparsity_weight, "DiCE genetic: sparsity weight");
  options.add("cf.dice_gradient_proximity_weight", &cf.dice.gradient_proximity_weight, "DiCE gradient: proximity weight");
  options.add("cf.dice_gradient_diversity_weight", &cf.dice.gradient_diversity_weight, "DiCE gradient: diversity weight");
  options.add("cf.dice_gradient_categorical_penalty", &cf.dice.gradient_categorical_penalty,
              "DiCE gradient: one-hot consistency penalty");
  options.add("cf.dice_gradient_learning_rate", &cf.dice.gradient_learning_rate, "DiCE gradient: Adam learning rate");
  options.add("cf.dice_gradient_min_iter", &cf.dice.gradient_min_iter, "DiCE gradient: minimum iterations");
  options.add("cf.dice_gradient_max_iter", &cf.dice.gradient_max_iter, "DiCE gradient: maximum iterations");
  options.add("cf.cfnow_it_max", &cf.cfnow.it_max, "CFNOW: finder iterations");
  options.add("cf.cfnow_change_factor", &cf.cfnow.change_factor, "CFNOW: relative step of a numeric move");
  options.add("cf.cfnow_ft_it_max", &cf.cfnow.ft_it_max,
              "CFNOW: fine-tune iterations (0: 5000 random, 1000 greedy; < 0: no fine-tune)");
  options.add("cf.cfnow_size_tabu", &cf.cfnow.size_tabu,
              "CFNOW: tabu list size (<1: share of features; 0: 0.2 for random, 5 for greedy)");
  options.add("cf.cfnow_ft_threshold_distance", &cf.cfnow.ft_threshold_distance,
              "CFNOW: fine-tune ignores changes smaller than this");
  options.add("cf.cfnow_threshold_changes", &cf.cfnow.threshold_changes,
              "CFNOW random: combinations enumerated per step before sampling");
  options.add("cf.nice_normalization", &cf.nice.normalization, "NICE: HEOM scaling of numeric features")
      .choices({"minmax", "std"});
  options.add("cf.nice_justified", &cf.nice.justified,
              "NICE: candidates are correctly classified training rows only");
  options.add("cf.llm_shots", &cf.llm.shots, "LLM few-shot: examples of the desired class per prompt");
  options.add("cf.llm_shot_choice", &cf.llm.shot_choice, "LLM few-shot: which training rows are the examples")
      .choices({"nearest", "random"});
  options.add("cf.llm_prompt_format", &cf.llm.prompt_format,
              "LLM prompts: chat (the model's chat template), plain text, or auto (chat when the model has a template)")
      .choices({"auto", "chat", "plain"});
  options.add("cf.llm_constrained", &cf.llm.constrained,
              "LLM: constrained decoding (every answer well-formed, in range, immutables copied)");
  options.add("cf.llm_candidates", &cf.llm.candidates,
              "LLM verifier: answers per query; the valid one closest to the query is kept");
  options.add("cf.llm_verify_candidates", &cf.llm.verify_candidates, "LLM: candidates of a '+verify' method");
  options.add("cf.llm_refine", &cf.llm.refine, "LLM: a second round for invalid answers, told f's verdict");
  options.add("cf.llm_batch_size", &cf.llm.batch_size, "LLM: sequences per generation batch").not_hashed();
  options.add("cf.llm_max_new_tokens", &cf.llm.max_new_tokens, "LLM: answer length limit (0: fits the format)");
  options.add("cf.llm_temperature", &cf.llm.temperature, "LLM: temperature of the first candidate (0: greedy)");
  options.add("cf.llm_sample_temperature", &cf.llm.sample_temperature, "LLM: temperature of further candidates");
  options.add("cf.llm_top_p", &cf.llm.top_p, "LLM: nucleus mass of sampled candidates");
  options.add_check([&cf] {
    check_method_name(cf.method);
    if (cf.llm.shots < 0) throw UsageError("cf.llm_shots must be >= 0");
    if (cf.llm.candidates < 1 || cf.llm.verify_candidates < 1)
      throw UsageError("cf.llm_candidates and cf.llm_verify_candidates must be at least 1");
    if (cf.llm.batch_size < 1) throw UsageError("cf.llm_batch_size must be at least 1");
    if (cf.llm.max_new_tokens < 0) throw UsageError("cf.llm_max_new_tokens must be >= 0");
    if (!(cf.llm.temperature >= 0) || !(cf.llm.sample_temperature > 0))
      throw UsageError("cf.llm_temperature must be >= 0 and cf.llm_sample_temperature > 0");
    if (!(cf.llm.top_p > 0 && cf.llm.top_p <= 1)) throw UsageError("cf.llm_top_p must be in (0, 1]");
    if (cf.n_cfs < 1) throw UsageError("cf.n_cfs must be at least 1");
    if (!(cf.time_limit > 0)) throw UsageError("cf.time_limit must be positive");
    if (cf.dice.sample_size < 1 || cf.dice.max_iterations < 1 || cf.cfnow.it_max < 1)
      throw UsageError("cf sample sizes and iteration counts must be positive");
    if (cf.dice.posthoc_sparsity < 0 || cf.dice.posthoc_sparsity > 1)
      throw UsageError("cf.dice_posthoc_sparsity must be in [0, 1]");
  });
}

namespace {

struct MethodFamily {
  std::string prefix;
  GeneratorFactory make;
  MethodNameCheck check;
};

std::vector<MethodFamily>& families() {
  static std::vector<MethodFamily> all;
  return all;
}

const MethodFamily* family_of(const std::string& name) {
  for (const auto& f : families())
    if (name.rfind(f.prefix, 0) == 0) return &f;
  return nullptr;
}

}  // namespace

void register_method_family(const std::string& prefix, GeneratorFactory factory, MethodNameCheck check) {
  for (auto& f : families()) {
    if (f.prefix == prefix) {  // registering again (tests, a second main) replaces
      f = MethodFamily{prefix, std::move(factory), std::move(check)};
      return;
    }
  }
  families().push_back(MethodFamily{prefix, std::move(factory), std::move(check)});
}

void check_method_name(const std::string& name) {
  if (const auto* family = family_of(name)) {
    family->check(name);
    return;
  }
  const auto names = method_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  if (name.rfind("llm:", 0) == 0)
    throw UsageError("method '" + name + "': this build has no LLM methods registered");
  const std::string best = closest_match(name, names);
  throw UsageError("unknown counterfactual method '" + name + "'" +
                       (best.empty() ? "" : "; did you mean '" + best + "'?"),
                   "methods: " + join(names, ", ") + ", llm:<model>:<mode>");
}

std::unique_ptr<Generator> make_generator(const CfOptions& options) {
  const std::string& m = options.method;
  if (const auto* family = family_of(m)) {
    family->check(m);
    return family->make(options);
  }
  if (m == "nice" || m == "nice-sparsity") return make_nice(options, "sparsity");
  if (m == "nice-none") return make_nice(options, "none");
  if (m == "nice-proximity") return make_nice(options, "proximity");
  if (m == "nice-plausibility") return make_nice(options, "plausibility");
  if (m == "dice-random") return make_dice_random(options);
  if (m == "dice-genetic") return make_dice_genetic(options);
  if (m == "dice-kdtree") return make_dice_kdtree(options);
  if (m == "dice-gradient") return make_dice_gradient(options);
  if (m == "cfnow-greedy") return make_cfnow(options, "greedy");
  if (m == "cfnow-random") return make_cfnow(options, "random");
  if (m == "cfnow-random-sequential") return make_cfnow(options, "random-sequential");
  const std::string best = closest_match(m, method_names());
  throw UsageError("unknown counterfactual method '" + m + "'",
                   best.empty() ? "methods: " + join(method_names(), ", ") : "did you mean '" + best + "'?");
}

std::vector<double> BlackBox::predict_proba(const data::Matrix& x) const {
  n_calls_.fetch_add(1, std::memory_order_relaxed);
  n_rows_.fetch_add(x.n_rows, std::memory_order_relaxed);
  return f_.predict_proba(x);
}

double BlackBox::predict_proba(const std::vector<double>& row) const {
  data::Matrix m(1, row.size());
  m.values = row;
  return predict_proba(m)[0];
}

int count_violations(const data::Schema& schema, const std::vector<double>& x, const std::vector<double>& cf) {
  int n = 0;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const auto& f = schema.features[j];
    if (f.immutable) {
      // An immutable feature only has to keep the query's value, even where the
      // query itself lies outside the training range (an older test patient).
      n += cf[j] != x[j] ? 1 : 0;
    } else if (f.is_categorical()) {
      const int code = static_cast<int>(cf[j]);
      if (static_cast<double>(code) != cf[j] || std::find(f.allowed.begin(), f.allowed.end(), code) == f.allowed.end()) ++n;
    } else if (!(cf[j] >= f.lower && cf[j] <= f.upper)) {
      ++n;
    }
  }
  return n;
}

void enforce_constraints(const data::Schema& schema, const std::vector<double>& x, std::vector<double>& cf) {
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const auto& f = schema.features[j];
    if (f.immutable) {
      cf[j] = x[j];
    } else if (f.is_categorical()) {
      const int code = static_cast<int>(std::lround(cf[j]));
      cf[j] = std::find(f.allowed.begin(), f.allowed.end(), code) != f.allowed.end() ? code : x[j];
    } else {
      cf[j] = std::clamp(cf[j], f.lower, f.upper);
    }
  }
}

namespace {

// Runs body(i) for i in [0, n) on min(threads, n) threads (threads <= 0: all
// cores), each thread taking the next index. The first exception stops the
// remaining indices and is rethrown here.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& body) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(n);
      }
    }
  };
  const int n_threads =
      std::max(1, std::min<int>(threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()),
                                static_cast<int>(n)));
  std::vector<std::thread> pool;
  for (int t = 1; t < n_threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

void check_targets(const std::string& who, const data::Matrix& queries, const std::vector<int>& targets) {
  if (targets.size() != queries.n_rows) {
    throw Error(fmt::format("{}: {} targets for {} queries", who, targets.size(), queries.n_rows));
  }
}

}  // namespace

std::uint64_t query_seed(unsigned long seed, std::size_t i) {
  return derive_seed(seed, "cf/query/" + std::to_string(i));
}

std::vector<QueryResult> Generator::explain_batch(const data::Matrix& queries,
                                                  const std::vector<int>& targets,
                                                  const BatchSettings& s) const {
  check_targets(name() + ": explain_batch", queries, targets);
  std::vector<QueryResult> results(queries.n_rows);
  parallel_for(queries.n_rows, s.threads, [&](std::size_t i) {
    const std::vector<double> x(queries.row(i), queries.row(i) + queries.n_cols);
    Rng rng(query_seed(s.seed, i));
    const auto start = std::chrono::steady_clock::now();
    QueryResult r = explain(x, targets[i], rng);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.query = i;
    r.target = targets[i];
    results[i] = std::move(r);
  });
  return results;
}

std::vector<QueryResult> explain_all(const Generator& generator, const Context& context,
                                     const data::Matrix& queries, const std::vector<int>& targets,
                                     const CfOptions& options) {
  check_targets("explain_all", queries, targets);
  std::vector<QueryResult> results =
      generator.explain_batch(queries, targets, BatchSettings{options.seed, options.threads});
  if (results.size() != queries.n_rows) {
    throw Error(fmt::format("{}: explain_batch returned {} results for {} queries", generator.name(),
                            results.size(), queries.n_rows));
  }
  parallel_for(results.size(), options.threads, [&](std::size_t i) {
    QueryResult& r = results[i];
    if (r.query != i || r.target != targets[i]) {
      throw Error(
          fmt::format("{}: result {} is for query {} with target {}, expected query {} with target {}",
                      generator.name(), i, r.query, r.target, i, targets[i]));
    }
    for (auto& c : r.cfs) {
      if (c.x.size() != queries.n_cols) {
        throw Error(fmt::format("{}: a CF for query {} has {} values, expected {}", generator.name(), i,
                                c.x.size(), queries.n_cols));
      }
      c.p1 = context.f->predict_proba(c.x);
      c.valid = (c.p1 > 0.5 ? 1 : 0) == targets[i];
    }
    if (r.cfs.empty() && r.note.empty()) r.note = "no counterfactual found";
  });
  return results;
}

}  // namespace sensecf::cf
