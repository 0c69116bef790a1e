// LoRA fine-tuning of a Llama/Mistral checkpoint: `sensecf lm finetune`, and
// what the sweep's finetune task will run.
//
// One run: read the JSONL examples (train/data.h), hold out an evaluation
// split, attach a fresh adapter with PEFT's init (A kaiming-uniform, B = 0: the
// untrained adapter is an exact no-op) or the one of the last checkpoint, and
// train A and B only with AdamW under a warmup + linear/cosine/constant
// schedule (train/optim.h). The defaults are the paper's Table I: r 16,
// alpha 32, dropout 0.03, 2 epochs, batch 4 × gradient accumulation 4, lr 2e-4,
// max length 512, evaluation every 50 and a checkpoint every 100 steps.
//
// The loss: next-token cross-entropy on completion tokens only, averaged over
// every completion token of the optimiser step (all micro-batches of the
// accumulation together), so k micro-batches give the gradient of the whole
// batch. Batches: shuffled per epoch from the seed, then grouped by length
// within windows of 16 batches (less padding), left-padded.
//
// Exact resume: OUT/checkpoint holds the adapter (PEFT layout), the AdamW
// moments, the step, the data position and the curve so far; LoRA dropout is
// seeded from (seed, step, rank) at every step. A run started again with the
// same options continues from the checkpoint, and on the CPU N steps equal
// N/2 steps + resume to the last bit. A run whose options differ from the
// checkpoint's is refused.
//
// Outputs in OUT: adapter_config.json + adapter_model.safetensors (the trained
// adapter, as PEFT saves it), train_curve.csv (step, epoch, loss, eval_loss,
// lr, grad_norm, tokens, seconds), checkpoint/.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "sensecf/llm/model/options.h"

namespace sensecf {
class Communicator;
class Options;
}

namespace sensecf::llm {

struct FinetuneOptions {
  std::string model_dir;   // Hugging Face model directory (config.json, weights, tokenizer.json)
  std::string data_path;   // training JSONL
  std::string eval_path;   // evaluation JSONL; empty: eval_fraction of data_path is held out
  std::string out_dir;     // adapter, curve and checkpoint
  std::string init_adapter;  // start from this PEFT adapter (its r, alpha, rslora, targets) instead of a fresh one
  ModelOptions model;      // device, dtype (the adapter is trained in fp32 whatever the dtype)
  std::size_t max_length = 512;
  double eval_fraction = 0.1;  // without eval_path; 0: no evaluation

  // LoRA
  std::int64_t r = 16;
  double alpha = 32;
  double dropout = 0.03;
  bool rslora = false;
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

  // Optimisation
  int epochs = 2;
  std::int64_t max_steps = 0;  // > 0: this many optimiser steps, whatever epochs says
  int batch_size = 4;
  int grad_accum = 4;
  double lr = 2e-4;
  std::string schedule = "linear";  // linear | cosine | constant
  double warmup_ratio = 0.0;        // share of the steps with a linear warmup
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;  // <= 0: no clipping
  bool group_by_length = true;
  bool gradient_checkpointing = false;  // recompute each layer in backward: less memory, ~1/3 more compute

  // Bookkeeping
  std::int64_t eval_every = 50;  // steps; 0: only at the end
  std::int64_t save_every = 100;  // steps; 0: only when stopped and at the end
  std::int64_t log_every = 10;
  std::uint64_t seed = 42;
  bool resume = true;  // continue from OUT/checkpoint when there is one
};

// [finetune] keys: the options above, lm.device / lm.dtype / lm.attention.
void declare_options(Options& options, FinetuneOptions& finetune);

struct TrainPoint {
  std::int64_t step = 0;  // optimiser steps done
  double epoch = 0;       // fractional
  double loss = 0;        // mean completion-token loss of this step
  double eval_loss = std::numeric_limits<double>::quiet_NaN();  // when evaluated at this step
  double lr = 0;          // learning rate this step used
  double grad_norm = 0;   // before clipping
  std::int64_t tokens = 0;  // tokens (prompt + completion) processed so far
  double seconds = 0;     // training time so far (resumed runs included)
};

struct FinetuneResult {
  std::int64_t steps = 0, total_steps = 0;
  std::int64_t resumed_from = 0;  // the checkpoint's step, 0 for a fresh run
  bool interrupted = false;       // stop_requested: a checkpoint was written, rerun to continue
  std::vector<TrainPoint> curve;
  std::size_t n_train = 0, n_eval = 0, n_truncated = 0;
  double tokens_per_second = 0;   // this process's training steps
};

// Runs (or resumes) the fine-tuning. `stop_requested` is polled after every
// optimiser step: when it returns true (on any rank) a checkpoint is written
// and the run returns with interrupted = true. Throws sensecf::Error for bad
// input and for a divergence (a non-finite loss or gradient, naming the step).
//
// Data parallel: with a communicator of k ranks, every rank runs this with
// the same options; the micro-batches of each optimiser step are dealt round
// robin to the ranks, the LoRA gradients summed across ranks before clipping
// and the update, so k ranks compute the step one rank computes (to float
// rounding; with dropout 0, as each rank draws its own dropout masks). Rank 0
// writes the checkpoint, the curve and the adapter.
FinetuneResult finetune(const FinetuneOptions& options, const std::function<bool()>& stop_requested = {},
                        Communicator* comm = nullptr);

}  // namespace sensecf::llm
