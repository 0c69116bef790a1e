// bench_llmcf_gpu is built where the GPU kit has no libcurl (the LLM-only
// build): the generator's remote backend is replaced by this one refusal.
// The benchmark runs local models only.
#include "sensecf/core/error.h"
#include "sensecf/llmcf/backend.h"

namespace sensecf::llmcf {

std::unique_ptr<Backend> make_remote_backend(const cf::CfOptions& /*options*/) {
  throw Error("bench_llmcf_gpu has no remote backend (built without libcurl)",
              "benchmark a local model; remote servers: build/cpu-release/bin/bench_remote");
}

}  // namespace sensecf::llmcf
