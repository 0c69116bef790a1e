// The five definitions of the cf module that the LLM CF generator
// (src/llmcf/generator.cpp) uses, for bench_llmcf_gpu in the LLM-only build
// (SENSECF_LLM_ONLY, what scripts/device/gpu-check builds on a GPU machine):
// that build has no cf module, because cf's other methods need the clf module
// and with it XGBoost and libsvm, which the GPU kit does not carry. Copied from
// src/cf/generator.cpp (query_seed, BlackBox::predict_proba) or reduced to what
// the benchmark needs (no method registry, no default explain_batch).
//
// bench_llmcf_gpu links neither sensecf_cf nor sensecf_llmcf, in either build
// (bench/gpu/bench_llmcf_gpu.cmake), so these never meet the real ones.
#include <string>

#include "sensecf/cf/generator.h"
#include "sensecf/core/error.h"

namespace sensecf::cf {

std::uint64_t query_seed(unsigned long seed, std::size_t i) {
  return derive_seed(seed, "cf/query/" + std::to_string(i));
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

std::vector<QueryResult> Generator::explain_batch(const data::Matrix&, const std::vector<int>&,
                                                  const BatchSettings&) const {
  throw Error(name() + ": the per-query explain_batch of the cf module is not part of the LLM-only build");
}

void register_method_family(const std::string&, GeneratorFactory, MethodNameCheck) {}

}  // namespace sensecf::cf
