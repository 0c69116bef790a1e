// Counterfactual generation: the one interface every method implements (NICE,
// DiCE, CFNOW, later the LLM generator), the black box as methods see it, the
// constraints every CF must satisfy, and the runner over a batch of queries.
//
// Space: a CF is a row of raw feature values, exactly like Dataset::x
// (categorical features hold category codes). Methods that work in an encoded
// space (one-hot, min-max) convert internally.
//
// Not here: the methods themselves (cf/nice.cpp, cf/dice_*.cpp, cf/cfnow.cpp),
// CF metrics (cf/metrics.h), the "explain these rows" flow (cf/explain.h), the
// CF file format (cf/cf_csv.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sensecf/clf/classifier.h"
#include "sensecf/core/random.h"
#include "sensecf/data/dataset.h"
#include "sensecf/remote/options.h"

namespace sensecf {
class Options;
}

namespace sensecf::cf {

// DiCE's options (defaults of dice-ml 0.12), keys cf.dice_*.
struct DiceOptions {
  int sample_size = 1000;                    // random: candidate rows sampled
  double posthoc_sparsity = 0.1;             // posthoc_sparsity_param (quantile)
  std::string posthoc_algorithm = "linear";  // linear | binary
  int max_iterations = 500;                  // genetic maxiterations
  double proximity_weight = 0.2;             // genetic (gradient uses 0.5, see gradient_*)
  double sparsity_weight = 0.2;              // genetic
  double gradient_proximity_weight = 0.5;
  double gradient_diversity_weight = 1.0;
  double gradient_categorical_penalty = 0.1;
  double gradient_learning_rate = 0.05;
  int gradient_min_iter = 500;
  int gradient_max_iter = 5000;
};

// CFNOW's options (defaults of cfnow 0.0.6), keys cf.cfnow_*.
struct CfnowOptions {
  int it_max = 5000;
  double change_factor = 0.1;  // ft_change_factor
  int ft_it_max = 0;           // 0: 5000 for random, 1000 for greedy; < 0: off
  double size_tabu = 0.0;      // 0: method default (0.2 share for random, 5 for greedy)
  double ft_threshold_distance = 1e-5;
  int threshold_changes = 100;
};

// NICE's options, keys cf.nice_*.
struct NiceOptions {
  std::string normalization = "minmax";  // minmax | std
  bool justified = true;                 // candidates: correctly classified training rows only
};

// The LLM method's options (llm:<model>:<mode>, made by the llmcf module:
// llmcf/generator.h), keys cf.llm_*. The model itself (directory, adapter,
// device, dtype, quantisation) comes from the [lm] keys of the command or from
// the sweep's sweep.llm_models.
struct LlmOptions {
  std::string model_dir;          // Hugging Face model directory (lm.model)
  std::string adapter;            // PEFT LoRA adapter (lm.adapter); the fine-tuned mode needs one
  std::string device = "cpu";     // lm.device
  std::string dtype = "auto";     // lm.dtype
  std::string quant = "none";     // lm.quant
  int shots = 3;                  // few-shot: examples of the desired class per prompt
  std::string shot_choice = "nearest";  // nearest | random training rows of the desired class
  std::string prompt_format = "auto";   // auto | chat | plain (auto: chat when the model ships a chat template)
  bool constrained = true;        // constrained decoding (llmcf/grammar.h); '+free' in a method name turns it off
  int candidates = 1;             // verifier: answers sampled per query, the valid one closest to x kept ('+verify')
  int verify_candidates = 4;      // candidates that '+verify' asks for
  bool refine = false;            // one more round for invalid answers, telling the model f's verdict ('+refine')
  int batch_size = 16;            // sequences per generate call
  int max_new_tokens = 0;         // 0: enough for the answer format of the schema
  double temperature = 0.0;       // first candidate (0: greedy)
  double sample_temperature = 0.8;  // further candidates
  double top_p = 0.95;            // of sampled candidates
  // A remote model (an OpenAI-compatible server) instead of model_dir when
  // remote.base_url is set (keys lm.*, remote/options.h).
  remote::RemoteOptions remote;
};

// Options of every method, declared as [cf] keys (see declare_options): the
// common ones, then one struct per method family.
struct CfOptions {
  std::string method = "nice";  // see method_names()
  int n_cfs = 1;                // CFs wanted per query (DiCE total_CFs, CFNOW count_cf)
  unsigned long seed = 0;
  int threads = 0;            // 0: all cores of this rank
  double time_limit = 120.0;  // seconds per query (CFNOW limit_seconds; a cap for every method)
  DiceOptions dice;
  CfnowOptions cfnow;
  NiceOptions nice;
  LlmOptions llm;
};

void declare_options(Options& options, CfOptions& cf);
// cf.n_cfs >= 1 and cf.time_limit > 0, else UsageError naming the option:
// checked when options are parsed and by generators built from code (CFNOW).
void check_query_limits(const CfOptions& cf);
// "nice", "nice-sparsity", "nice-proximity", "nice-plausibility", "dice-random",
// "dice-genetic", "dice-kdtree", "dice-gradient", "cfnow-greedy", "cfnow-random",
// "cfnow-random-sequential".
std::vector<std::string> method_names();
// Whether a method needs LibTorch: dice-gradient (the NN's gradients),
// nice-plausibility (the autoencoder), every family method (the LLMs) and any
// name not in method_names(). The front-end `sensecf` hands these to sensecf-full.
bool method_needs_torch(const std::string& name);

// The black box f as CF methods see it: P(y = 1) on a batch. Counts calls and
// rows (thread-safe) so a method's cost can be reported.
class BlackBox {
 public:
  explicit BlackBox(const clf::Classifier& f) : f_(f) {}
  std::vector<double> predict_proba(const data::Matrix& x) const;
  double predict_proba(const std::vector<double>& row) const;
  int predict(const std::vector<double>& row) const { return predict_proba(row) > 0.5 ? 1 : 0; }
  const clf::Classifier& classifier() const { return f_; }
  std::size_t n_calls() const { return n_calls_.load(); }
  std::size_t n_rows() const { return n_rows_.load(); }

 private:
  const clf::Classifier& f_;
  mutable std::atomic<std::size_t> n_calls_{0};
  mutable std::atomic<std::size_t> n_rows_{0};
};

// Everything a generator may look at. Pointers stay valid for the generator's life.
struct Context {
  const BlackBox* f = nullptr;
  const data::Schema* schema = nullptr;      // permitted ranges, categories, immutables
  const data::Matrix* train_x = nullptr;     // training rows (NICE, DiCE kdtree/genetic, MADs)
  const std::vector<int>* train_y = nullptr;
};

struct Counterfactual {
  std::vector<double> x;  // [d] raw feature values
  double p1 = 0.0;        // f's P(y = 1) at x
  bool valid = false;     // f predicts the target class at x
};

struct QueryResult {
  std::size_t query = 0;              // row index into the query matrix
  int target = 1;                     // desired class
  std::vector<Counterfactual> cfs;    // empty: no CF found (reported, never dropped)
  double seconds = 0.0;
  std::string note;                   // why none/fewer were found, time limit hit, ...
  // Methods that answer in text (the LLM methods): every answer the model gave
  // for this query (raw text, kept for the results file), and how many of them
  // parsed into a CF. Baselines leave both empty / 0 (parse rate: not applicable).
  std::vector<std::string> answers;
  int n_parsed = 0;
};

// How a batch of queries is run. Query i draws its randomness from
// Rng(query_seed(seed, i)), so results do not depend on the thread count,
// the order or the batch a query comes in.
struct BatchSettings {
  unsigned long seed = 0;
  int threads = 0;  // 0: all cores of this rank
};

// The seed of query i of a batch: derive_seed(seed, "cf/query/<i>").
std::uint64_t query_seed(unsigned long seed, std::size_t i);

class Generator {
 public:
  virtual ~Generator() = default;
  virtual std::string name() const = 0;
  // Once, before any explain(): e.g. predict the training set, build a tree,
  // train an autoencoder. The context outlives the generator.
  virtual void prepare(const Context& context) { context_ = context; }
  // CFs for one query x: [d] towards `target`. Must be safe to call from several
  // threads at once, take randomness only from `rng`, and return CFs that satisfy
  // the constraints (see enforce_constraints).
  virtual QueryResult explain(const std::vector<double>& x, int target, Rng& rng) const = 0;
  // CFs for every row of queries: [n, d] towards targets[i]. Returns n results,
  // result i with query = i, target = targets[i] and seconds = the time spent on
  // query i; Counterfactual::p1/valid are left to explain_all. The default runs
  // explain() for each query on s.threads threads, query i with
  // Rng(query_seed(s.seed, i)). A generator that needs the whole batch at once
  // (an LLM prompting several queries together) overrides this.
  virtual std::vector<QueryResult> explain_batch(const data::Matrix& queries, const std::vector<int>& targets,
                                                 const BatchSettings& s) const;
  // What the generator spent besides time, as counters for the results file:
  // a remote LLM's requests, cache hits, retries, failures, tokens and cost
  // (remote::Usage). Empty for methods that spend nothing else.
  virtual std::map<std::string, double> usage() const { return {}; }

 protected:
  Context context_;
};

// A method family made outside this module: names that start with `prefix`
// (the LLM methods, "llm:") are made by `factory` and checked by `check`
// (throws sensecf::UsageError for a malformed name). The llmcf module
// registers its family with llmcf::register_methods(); the sensecf binary and
// the tests call that once at start.
using GeneratorFactory = std::function<std::unique_ptr<Generator>(const CfOptions&)>;
using MethodNameCheck = std::function<void(const std::string& name)>;
void register_method_family(const std::string& prefix, GeneratorFactory factory, MethodNameCheck check);
// The generator of a registered family's method; nullptr when options.method
// belongs to no family (make_generator then tries the baselines).
std::unique_ptr<Generator> make_family_generator(const CfOptions& options);
// Throws sensecf::UsageError (with a hint) unless `name` is a method:
// method_names() or a registered family's well-formed name.
void check_method_name(const std::string& name);

std::unique_ptr<Generator> make_generator(const CfOptions& options);

// Constraints every CF satisfies: immutable features equal the query's (whatever
// their range); mutable continuous values inside [lower, upper], mutable
// categorical codes inside `allowed`.
// Returns the number of violations in cf (0 = ok).
int count_violations(const data::Schema& schema, const std::vector<double>& x, const std::vector<double>& cf);
// Projects cf onto the constraints (immutables reset to x, continuous clamped,
// a categorical code outside `allowed` reset to x's).
void enforce_constraints(const data::Schema& schema, const std::vector<double>& x, std::vector<double>& cf);

// The entry point for a batch of queries: generator.explain_batch with
// options.seed and options.threads, then checks each result's shape and fills
// Counterfactual::p1/valid from context.f for every returned CF (and a note for
// a query without any).
std::vector<QueryResult> explain_all(const Generator& generator, const Context& context,
                                     const data::Matrix& queries, const std::vector<int>& targets,
                                     const CfOptions& options);

}  // namespace sensecf::cf
