// The shared "explain these rows" flow (see cf/explain.h).
#include "sensecf/cf/explain.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "sensecf/core/error.h"

namespace sensecf::cf {

ExplainRun explain_rows(const CfOptions& options, const Context& context, const data::Matrix& query_x,
                        const std::vector<int>& targets) {
  if (!context.f || !context.schema || !context.train_x) {
    throw Error("explain_rows: the context needs the black box, the schema and the training rows");
  }
  using Clock = std::chrono::steady_clock;
  ExplainRun run;
  auto generator = make_generator(options);
  run.generator_name = generator->name();
  const std::size_t calls_before = context.f->n_calls();
  const auto start = Clock::now();
  generator->prepare(context);
  run.prepare_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  spdlog::debug("{}: prepared in {:.2f} s, explaining {} queries", run.generator_name, run.prepare_seconds,
                query_x.n_rows);
  run.results = explain_all(*generator, context, query_x, targets, options);
  run.total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  run.n_model_calls = context.f->n_calls() - calls_before;
  run.usage = generator->usage();
  run.by_class = evaluate_by_class(run.results, query_x, *context.schema, *context.f, *context.train_x);
  return run;
}

std::vector<int> flip_targets(const BlackBox& f, const data::Matrix& query_x) {
  std::vector<int> targets;
  targets.reserve(query_x.n_rows);
  for (double p : f.predict_proba(query_x)) targets.push_back(p > 0.5 ? 0 : 1);
  return targets;
}

}  // namespace sensecf::cf
