// The one "explain these rows" flow that `sensecf explain` and the sweep's
// generate task share: build the method's generator, prepare it, explain the
// query rows towards their targets, and compute the CF metrics per factual
// class.
//
// Not here: choosing the query rows, reading the model or the data, writing
// files (cf/cf_csv.h, the sweep's store). Callers set LibTorch to one thread
// (clf::set_torch_threads(1)) before predicting anything: parallelism is over
// queries.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sensecf/cf/generator.h"
#include "sensecf/cf/metrics.h"

namespace sensecf::cf {

struct ExplainRun {
  std::vector<QueryResult> results;   // one per query row, as explain_all returns them
  std::map<int, CfMetrics> by_class;  // evaluate_by_class of results (keys -1, 0, 1)
  double prepare_seconds = 0;         // Generator::prepare
  double total_seconds = 0;           // prepare + explaining every query (metrics not included)
  std::string generator_name;         // Generator::name(), e.g. "nice-sparsity"
  std::size_t n_model_calls = 0;      // f's predict_proba calls by prepare and explain (metrics not included)
  std::map<std::string, double> usage;  // Generator::usage() after the run (a remote LLM's requests, tokens, cost)
};

// make_generator(options), prepare(context), explain the query rows
// (query_x: [n, d]) towards targets (explain_all), CF metrics per factual class
// against context.train_x. The context needs f, schema and train_x.
ExplainRun explain_rows(const CfOptions& options, const Context& context, const data::Matrix& query_x,
                        const std::vector<int>& targets);

// The usual targets: flip f's prediction of each query row (1 where f predicts
// 0, i.e. P(y = 1) <= 0.5; else 0). One batched predict_proba.
std::vector<int> flip_targets(const BlackBox& f, const data::Matrix& query_x);

}  // namespace sensecf::cf
