// The [lm] options of the model module (see options.h).
#include "sensecf/llm/model/options.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "sensecf/core/error.h"
#include "sensecf/llm/text/tokenizer.h"

namespace sensecf::llm {

static_assert(std::is_same_v<std::uint64_t, unsigned long>,
              "GenerationOptions::seed is declared as an unsigned long option");

void check_device_name(const std::string& name) {
  bool ok = name == "cpu" || name == "cuda";
  if (!ok && name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 8) {
    ok = std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  if (!ok) {
    throw UsageError("lm.device must be cpu, cuda or cuda:N (N a GPU number), found '" + name + "'",
                     "e.g. --device cuda:0; under `sensecf sweep` each worker picks its GPU itself");
  }
}

void declare_options(Options& o, ModelOptions& model) {
  o.add("lm.device", &model.device, "cpu or cuda:N", "device");
  o.add_check([&model] { check_device_name(model.device); });
  o.add("lm.dtype", &model.dtype, "weights and activations", "dtype").choices({"auto", "float32", "bfloat16", "float16"});
  o.add("lm.attention", &model.attention, "auto (sdpa on LibTorch >= 2), eager, sdpa", "attention")
      .choices({"auto", "eager", "sdpa"});
  o.add("lm.cuda_graph", &model.cuda_graph,
        "decode steps as one replayed CUDA graph: auto (on for cuda devices), on, off", "cuda-graph")
      .choices({"auto", "on", "off"});
  o.add("lm.quant", &model.quant,
        "frozen projection weights: none, nf4 (4-bit NormalFloat, blocks of 64), nf4-dq (+ 8-bit block scales)",
        "quant")
      .choices({"none", "nf4", "nf4-dq"});
}

void declare_adapter_options(Options& o, ModelOptions& model) {
  o.add("lm.adapter", &model.adapter, "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors)",
        "adapter");
  o.add("lm.merge_adapter", &model.merge_adapter, "fold the adapter into the weights at load (faster)",
        "merge-adapter");
}

void declare_options(Options& o, GenerationOptions& g) {
  o.add("lm.max_new_tokens", &g.max_new_tokens, "new tokens at most", "max-new-tokens");
  o.add("lm.temperature", &g.temperature, "0: greedy", "temperature");
  o.add("lm.top_k", &g.top_k, "sample from the k most likely tokens (0: off)", "top-k");
  o.add("lm.top_p", &g.top_p, "nucleus sampling mass (1: off)", "top-p");
  o.add("lm.seed", &g.seed, "sampling seed", "seed");
  o.add_check([&g] { validate(g); });
}

void validate(const GenerationOptions& g) {
  if (g.max_new_tokens < 0)
    throw UsageError("lm.max_new_tokens must be >= 0, found " + std::to_string(g.max_new_tokens));
  if (!std::isfinite(g.temperature) || g.temperature < 0)
    throw UsageError(fmt::format("lm.temperature must be a finite number >= 0, found {}", g.temperature),
                     "0 decodes greedily; 0.7 to 1 are usual for sampling");
  if (g.top_k < 0)
    throw UsageError("lm.top_k must be >= 0, found " + std::to_string(g.top_k), "0 turns top-k off");
  if (!(g.top_p > 0 && g.top_p <= 1))
    throw UsageError(fmt::format("lm.top_p must be in (0, 1], found {}", g.top_p),
                     "1 turns top-p off; 0.9 keeps the most likely tokens that make up 90% of the mass");
}

std::vector<int> default_stop_ids(const std::string& model_dir, const ModelConfig& config, const Tokenizer& tokenizer) {
  std::vector<int> ids;
  for (const auto id : config.eos_token_ids) ids.push_back(static_cast<int>(id));
  for (const int id : read_generation_eos(model_dir)) ids.push_back(id);
  for (const int id : tokenizer.eos_ids()) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace sensecf::llm
