// `sensecf lm finetune`: LoRA fine-tuning of a Hugging Face Llama/Mistral
// checkpoint on a JSONL file (llm/train/trainer.h). SIGTERM, SIGINT and
// SIGUSR1 (what Slurm sends before a time limit) end the run after the current
// optimiser step with a checkpoint and exit code 75; the same command then
// continues from it. Under mpirun with k ranks it trains data-parallel (the
// step's micro-batches dealt to the ranks, gradients summed over MPI, or over
// NCCL on GPUs where the build has it; --lm.device cuda gives each rank its
// node-local GPU).
#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/train/trainer.h"

namespace sensecf::cli {
namespace {

constexpr int kExitInterrupted = 75;  // as the sweep runner: rerun the same command to resume (EX_TEMPFAIL)
std::atomic<int> g_stop_signal{0};

extern "C" void on_finetune_stop_signal(int sig) { g_stop_signal.store(sig); }

}  // namespace

int cmd_lm_finetune(const std::vector<std::string>& args) {
  llm::FinetuneOptions f;
  LogOptions log;
  bool json = false;
  Options options("lm finetune",
                  "Train a LoRA adapter (PEFT layout) on prompt/completion or chat JSONL; the loss covers the\n"
                  "completion tokens only. Defaults: the paper's Table I (r 16, alpha 32, dropout 0.03, 2 epochs,\n"
                  "batch 4 x 4, lr 2e-4, max length 512, eval every 50, checkpoint every 100 steps).\n"
                  "  sensecf lm finetune --model results/tiny-llama --data train.jsonl --out results/tiny-ft\n"
                  "Rerunning the same command continues from OUT/checkpoint (SIGTERM/SIGUSR1 write one, exit 75).");
  llm::declare_options(options, f);
  options.add("finetune.json", &json, "print the result (steps, losses, tokens/s) as JSON", "json").not_hashed();
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) std::signal(sig, on_finetune_stop_signal);
  const auto comm = job_training_communicator(f.model.device);
  const auto result = llm::finetune(f, [] { return g_stop_signal.load() != 0; }, comm.get());
  if (json && comm->rank() == 0) {
    nlohmann::json j = {{"steps", result.steps},           {"total_steps", result.total_steps},
                        {"resumed_from", result.resumed_from}, {"interrupted", result.interrupted},
                        {"n_train", result.n_train},       {"n_eval", result.n_eval},
                        {"tokens_per_second", result.tokens_per_second}};
    if (!result.curve.empty()) {
      j["loss"] = result.curve.back().loss;
      j["first_loss"] = result.curve.front().loss;
      if (std::isfinite(result.curve.back().eval_loss)) j["eval_loss"] = result.curve.back().eval_loss;
    }
    std::cout << j.dump() << "\n";
  }
  if (result.interrupted) {
    spdlog::warn("finetune: interrupted by signal {}; checkpoint in {}/checkpoint", g_stop_signal.load(), f.out_dir);
    return kExitInterrupted;
  }
  return 0;
}

}  // namespace sensecf::cli
