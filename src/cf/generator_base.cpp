// The CF generator interface's method-independent parts: the method names and
// the registry of method families (the LLM methods), the black-box wrapper,
// constraints and the runner over a batch of queries (the default
// explain_batch: a parallel loop of explain()). The baselines' factory and the
// [cf] options are in generator.cpp.
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <thread>

#include "sensecf/cf/generator.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::cf {

std::vector<std::string> method_names() {
  return {"nice",         "nice-none",    "nice-sparsity", "nice-proximity", "nice-plausibility",
          "dice-random",  "dice-genetic", "dice-kdtree",   "dice-gradient",  "cfnow-greedy",
          "cfnow-random", "cfnow-random-sequential"};
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

bool method_needs_torch(const std::string& name) {
  const auto names = method_names();
  return name == "dice-gradient" || name == "nice-plausibility" || family_of(name) ||
         std::find(names.begin(), names.end(), name) == names.end();
}

void register_method_family(const std::string& prefix, GeneratorFactory factory, MethodNameCheck check) {
  for (auto& f : families()) {
    if (f.prefix == prefix) {  // registering again (tests, a second main) replaces
      f = MethodFamily{prefix, std::move(factory), std::move(check)};
      return;
    }
  }
  families().push_back(MethodFamily{prefix, std::move(factory), std::move(check)});
}

std::unique_ptr<Generator> make_family_generator(const CfOptions& options) {
  const auto* family = family_of(options.method);
  if (!family) return nullptr;
  family->check(options.method);
  return family->make(options);
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
