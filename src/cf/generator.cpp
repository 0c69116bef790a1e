// The CF generator interface's method-specific parts: the [cf] options and
// the factory of the baselines (NICE, DiCE, CFNOW). What does not depend on a
// method (registry, black box, constraints, the batch runner) is in
// generator_base.cpp, which the LLM method's GPU benchmark builds alone.
#include "sensecf/cf/generator.h"

#include <spdlog/fmt/fmt.h>

#include "sensecf/cf/cfnow.h"
#include "sensecf/cf/dice.h"
#include "sensecf/cf/nice.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"

namespace sensecf::cf {

void check_query_limits(const CfOptions& cf) {
  if (cf.n_cfs < 1)
    throw UsageError(fmt::format("cf.n_cfs must be at least 1, got {}", cf.n_cfs), "e.g. --cf.n_cfs 1 (the default)");
  if (!(cf.time_limit > 0))
    throw UsageError(fmt::format("cf.time_limit must be positive, got {}", cf.time_limit),
                     "seconds per query, e.g. --cf.time_limit 120 (the default)");
}

void declare_options(Options& options, CfOptions& cf) {
  options.add("cf.method", &cf.method,
              "counterfactual method ('nice' = nice-sparsity, NICEx's default; llm:<model>:<mode> for an LLM)",
              "method");
  options.add("cf.n_cfs", &cf.n_cfs, "counterfactuals wanted per query", "n-cfs");
  options.add("cf.seed", &cf.seed, "random seed (per query: derived from seed and query index)", "seed");
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
    if (cf.llm.shots < 0)
      throw UsageError(fmt::format("cf.llm_shots must be >= 0, got {}", cf.llm.shots),
                       "e.g. --cf.llm_shots 3 (the default); 0 gives a zero-shot prompt");
    if (cf.llm.candidates < 1 || cf.llm.verify_candidates < 1)
      throw UsageError(
          fmt::format("cf.llm_candidates and cf.llm_verify_candidates must be at least 1, got {} and {}",
                      cf.llm.candidates, cf.llm.verify_candidates),
          "the defaults are --cf.llm_candidates 1 and --cf.llm_verify_candidates 4");
    if (cf.llm.batch_size < 1)
      throw UsageError(fmt::format("cf.llm_batch_size must be at least 1, got {}", cf.llm.batch_size),
                       "e.g. --cf.llm_batch_size 16 (the default)");
    if (cf.llm.max_new_tokens < 0)
      throw UsageError(fmt::format("cf.llm_max_new_tokens must be >= 0, got {}", cf.llm.max_new_tokens),
                       "0 (the default) leaves room for the answer format of the schema");
    if (!(cf.llm.temperature >= 0) || !(cf.llm.sample_temperature > 0))
      throw UsageError(
          fmt::format("cf.llm_temperature must be >= 0 and cf.llm_sample_temperature > 0, got {} and {}",
                      cf.llm.temperature, cf.llm.sample_temperature),
          "the defaults are --cf.llm_temperature 0 (greedy) and --cf.llm_sample_temperature 0.8");
    if (!(cf.llm.top_p > 0 && cf.llm.top_p <= 1))
      throw UsageError(fmt::format("cf.llm_top_p must be in (0, 1], got {}", cf.llm.top_p),
                       "e.g. --cf.llm_top_p 0.95 (the default), or 1 for no nucleus cut");
    check_query_limits(cf);
    if (cf.dice.sample_size < 1 || cf.dice.max_iterations < 1 || cf.cfnow.it_max < 1)
      throw UsageError(fmt::format("cf sample sizes and iteration counts must be positive, got "
                                   "cf.dice_sample_size {}, cf.dice_max_iterations {}, cf.cfnow_it_max {}",
                                   cf.dice.sample_size, cf.dice.max_iterations, cf.cfnow.it_max),
                       "the defaults are 1000, 500 and 5000");
    if (cf.dice.posthoc_sparsity < 0 || cf.dice.posthoc_sparsity > 1)
      throw UsageError(
          fmt::format("cf.dice_posthoc_sparsity must be in [0, 1], got {}", cf.dice.posthoc_sparsity),
          "e.g. --cf.dice_posthoc_sparsity 0.1 (the default), or 0 for off");
  });
}

std::unique_ptr<Generator> make_generator(const CfOptions& options) {
  const std::string& m = options.method;
  if (auto generator = make_family_generator(options)) return generator;
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

}  // namespace sensecf::cf
