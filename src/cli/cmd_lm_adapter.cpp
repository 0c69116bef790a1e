// `sensecf lm init-adapter`: a fresh PEFT LoRA adapter for a model directory,
// in the layout PeftModel.save_pretrained writes (adapter_config.json,
// adapter_model.safetensors), so that `lm logits/generate --adapter` and PEFT
// itself read it. `--init zero` is PEFT's own start (B = 0: a no-op adapter);
// `--init random` (the default) also draws B, so the adapter changes the
// logits: what the tests, the golden comparison and the benchmarks need.
// Training adapters is not done here.
#include <spdlog/spdlog.h>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/provenance.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/lora/lora.h"

namespace sensecf::cli {

int cmd_lm_init_adapter(const std::vector<std::string>& args) {
  LogOptions log;
  // Defaults: the paper's Table I (r 16, alpha 32, dropout 0.03) and PEFT's
  // init (B = 0) and default targets for Llama/Mistral (q_proj, v_proj).
  std::string model, out, init = "zero";
  std::vector<std::string> targets = {"q_proj", "v_proj"};
  long r = 16;
  double alpha = 32, dropout = 0.03;
  bool rslora = false;
  unsigned long seed = 1;
  Options options("lm init-adapter",
                  "Write a new LoRA adapter for a model in PEFT's layout (adapter_config.json,\n"
                  "adapter_model.safetensors):\n"
                  "  sensecf lm init-adapter --model results/tiny-llama --out results/tiny-lora --targets all-linear");
  options.add("adapter.model", &model, "Hugging Face model directory the adapter is for", "model");
  options.add("adapter.out", &out, "output directory", "out");
  options.add("adapter.r", &r, "LoRA rank", "r");
  options.add("adapter.alpha", &alpha, "lora_alpha (scaling alpha / r)", "alpha");
  options.add("adapter.rslora", &rslora, "rank-stabilised scaling alpha / sqrt(r)", "rslora");
  options.add("adapter.targets", &targets,
              "target_modules: projection names (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj) or "
              "all-linear",
              "targets");
  options.add("adapter.dropout", &dropout, "lora_dropout recorded in the config (inference ignores it)",
              "dropout");
  options.add("adapter.init", &init, "zero: B = 0 (PEFT's no-op start); random: B ~ N(0, 0.02) too", "init")
      .choices({"zero", "random"});
  options.add("adapter.seed", &seed, "seed of the random matrices", "seed");
  options.add_check([&] {
    if (model.empty()) throw UsageError("--model is required", "pass a model directory, e.g. one from `sensecf lm init-tiny`");
    if (out.empty()) throw UsageError("--out is required", "pass the directory to write the adapter to");
    if (r <= 0) throw UsageError("--r must be positive, found " + std::to_string(r));
    if (targets.empty()) throw UsageError("--targets is empty", "e.g. --targets q_proj,v_proj or all-linear");
  });
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const llm::ModelConfig model_config = llm::load_config(model);
  llm::LoraConfig config;
  config.source = "--targets";
  config.r = r;
  config.lora_alpha = alpha;
  config.use_rslora = rslora;
  config.lora_dropout = dropout;
  config.base_model_name_or_path = model;
  if (targets.size() == 1 && targets[0] == "all-linear") {
    config.targets = llm::LoraConfig::Targets::kAllLinear;
  } else {
    config.targets = llm::LoraConfig::Targets::kList;
    config.target_modules = targets;
  }
  auto adapter = llm::init_lora_adapter(config, model_config, llm::parse_lora_init(init), seed);
  if (config.targets == llm::LoraConfig::Targets::kAllLinear) {
    // PEFT saves all-linear resolved to the names it matched.
    adapter.config.targets = llm::LoraConfig::Targets::kList;
    adapter.config.target_modules.clear();
    for (const auto& kind : llm::lora_linear_kinds()) adapter.config.target_modules.push_back(kind);
  }
  adapter.config.source = out + "/adapter_config.json";
  llm::save_lora_adapter(out, adapter,
                         {{"sensecf", version_string()},
                          {"sensecf_config_hash", options.config_hash()},
                          {"sensecf_init", init},
                          {"sensecf_seed", std::to_string(seed)}});
  spdlog::info("wrote {} ({} init, seed {}) to {}", llm::describe_lora(adapter.modules), init, seed, out);
  return 0;
}

}  // namespace sensecf::cli
