// `sensecf lm bench-train`: LoRA / QLoRA training-step speed and memory of the
// trainer's own step (train/batch.h, train/optim.h) at a model's real shapes,
// with random weights made on the device:
//
//   sensecf lm bench-train --shape llama-3.1-8b --device cuda:0 --batch 4 --seq-len 512 --peak-tflops 989
//   sensecf lm bench-train --shape llama-3.1-8b --device cuda:0 --lm.quant nf4     (QLoRA)
//
// One step = forward of B random sequences of T tokens, the loss on the last C
// tokens of each (the completion), backward into the adapter, clipping and
// AdamW: what `lm finetune` does per micro-batch. bench/gpu/hf_finetune.py
// times transformers + PEFT on the same shapes and counts FLOPs the same way.
//
// Model FLOPs per step (the useful work; a recomputation under gradient
// checkpointing is not counted, LoRA's own matmuls are < 1% and left out):
//   projections  4 · N · B·T       N = the seven projections' weights of all
//                                  layers: 2N forward + 2N for the inputs'
//                                  gradients (the base weights get none)
//   attention    12 · L · T · H·d · B·T   QKᵀ and AV forward (4·T·H·d per
//                                  token and layer, causal half not taken off)
//                                  and twice that backward
//   LM head      4 · V · h · B·C   the completion positions only: forward and
//                                  its input's gradient (the weight is frozen)
// MFU = model FLOPs per second / --peak-tflops (the GPU's dense bf16 peak:
// H100 SXM and H200 989).
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/decoder.h"
#include "sensecf/llm/model/device_memory.h"
#include "sensecf/llm/train/batch.h"
#include "sensecf/llm/train/optim.h"
#include "sensecf/llm/train/trainer.h"

namespace sensecf::cli {
namespace {

double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

// Model FLOPs of one step (see the file comment).
double step_flops(const llm::ModelConfig& c, double batch, double seq, double completion) {
  double projections = 0;
  for (const auto& [name, shape] : llm::expected_tensor_shapes(c)) {
    if (name.find("_proj.weight") == std::string::npos) continue;
    projections += static_cast<double>(shape[0]) * static_cast<double>(shape[1]);
  }
  const double tokens = batch * seq;
  const double attention_width = static_cast<double>(c.num_attention_heads * c.head_dim);
  return 4.0 * projections * tokens +
         12.0 * static_cast<double>(c.num_hidden_layers) * seq * attention_width * tokens +
         4.0 * static_cast<double>(c.vocab_size) * static_cast<double>(c.hidden_size) * batch * completion;
}

int lm_bench_train(const std::vector<std::string>& args) {
  LogOptions log;
  std::string shape = "tiny-llama", json_out;
  bool json = false, checkpointing = false;
  llm::ModelOptions model_options;
  long layers = 0, batch = 4, seq_len = 512, completion_len = 128, steps = 10, warmup = 3, head_chunk = 256;
  const llm::FinetuneOptions paper;  // LoRA settings: lm finetune's defaults, the paper's Table I
  long r = static_cast<long>(paper.r);
  double alpha = paper.alpha, dropout = paper.dropout, peak_tflops = 0;
  std::vector<std::string> targets = paper.targets;
  unsigned long seed = 1;
  Options options(
      "lm bench-train",
      "LoRA / QLoRA training-step tokens/s, MFU and peak device memory of `lm finetune`'s step at a\n"
      "model's real shapes, with random weights made directly on the device.");
  declare_bench_shape_options(options, shape, layers);
  options.add("bench.batch", &batch, "sequences per step", "batch");
  options.add("bench.seq_len", &seq_len, "tokens per sequence (no padding)", "seq-len");
  options.add("bench.completion_len", &completion_len, "loss tokens at the end of each sequence",
              "completion-len");
  options.add("bench.steps", &steps, "timed steps", "steps");
  options.add("bench.warmup", &warmup, "untimed steps first (allocator, kernels)", "warmup");
  options.add("bench.r", &r, "LoRA rank", "r");
  options.add("bench.alpha", &alpha, "lora_alpha", "alpha");
  options.add("bench.dropout", &dropout, "LoRA dropout", "dropout");
  options.add("bench.targets", &targets, "projections with an adapter", "targets");
  options.add("bench.gradient_checkpointing", &checkpointing, "recompute each layer in backward",
              "gradient-checkpointing");
  options.add(
      "bench.head_chunk", &head_chunk,
      "loss positions per pass of the LM head (the trainer's 256; more than batch x completion-len: the "
      "logits of all at once)",
      "head-chunk");
  options.add("bench.peak_tflops", &peak_tflops,
              "the device's dense bf16 peak in TFLOP/s for MFU (H100 SXM / H200: 989; 0: skip)",
              "peak-tflops");
  options.add("bench.seed", &seed, "seed of the random weights, adapter and tokens", "seed");
  options.add("bench.json", &json, "print one JSON line instead of the table", "json").not_hashed();
  options.add("bench.out", &json_out, "also write the JSON line to this file", "out").not_hashed();
  llm::declare_options(options, model_options);
  options.add_check([&] {
    if (batch < 1 || seq_len < 2 || steps < 1 || warmup < 0 || r < 1 || head_chunk < 1)
      throw UsageError(
          "--batch, --steps, --r and --head-chunk must be >= 1, --seq-len >= 2 and --warmup >= 0");
    if (completion_len < 1 || completion_len >= seq_len)
      throw UsageError(fmt::format("--completion-len must be in [1, --seq-len), got {} for --seq-len {}",
                                   completion_len, seq_len),
                       "e.g. --seq-len 512 --completion-len 128");
  });
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const auto config = lm_bench_config(shape, layers);
  const auto start = std::chrono::steady_clock::now();
  const auto model = llm::Decoder::random(config, model_options, seed);
  const c10::Device device = model->device();
  const auto load_peak = llm::peak_device_memory(device);
  llm::LoraConfig lora;
  lora.r = r;
  lora.lora_alpha = alpha;
  lora.target_modules = targets;
  model->attach(llm::init_lora_adapter(lora, config, llm::LoraInit::kZero, seed));
  model->set_lora_trainable(true);
  model->set_lora_dropout(dropout);
  model->set_gradient_checkpointing(checkpointing);
  std::vector<at::Tensor> params;
  double trainable = 0;
  for (auto& [name, t] : model->lora_parameters()) {
    params.push_back(t);
    trainable += static_cast<double>(t.numel());
  }
  llm::AdamW optimizer(params, llm::AdamWOptions{});
  spdlog::info(
      "{}: {} layers, hidden {}, vocab {}, quant {}; random weights on {} in {:.1f} s; LoRA r {} on {} "
      "({:.1f}M trainable)",
      shape, config.num_hidden_layers, config.hidden_size, config.vocab_size, model_options.quant,
      model_options.device, seconds_since(start), r, join(targets, ","), trainable / 1e6);

  // Random sequences of seq_len tokens whose last completion_len tokens are the loss tokens.
  Rng rng(seed);
  std::vector<llm::TrainExample> examples(static_cast<std::size_t>(batch));
  std::vector<std::size_t> which;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    for (long t = 0; t < seq_len; ++t)
      examples[i].ids.push_back(static_cast<int>(rng.below(static_cast<std::uint64_t>(config.vocab_size))));
    examples[i].prompt_len = static_cast<std::size_t>(seq_len - completion_len);
    which.push_back(i);
  }
  const llm::TrainBatch b = llm::make_train_batch(examples, which, device);
  double last_loss = 0;
  auto step = [&] {
    const auto loss = llm::completion_loss_sum(*model, b, head_chunk);
    (loss / static_cast<double>(b.n_loss_tokens)).backward();
    llm::clip_grad_norm(params, 1.0);  // reads the norm on the host: the backward has finished
    optimizer.step(2e-4);
    optimizer.zero_grad();
    last_loss = loss.item<double>() / static_cast<double>(b.n_loss_tokens);
  };
  auto wait_for_device = [&] { params.front().sum().item<double>(); };
  for (long i = 0; i < warmup; ++i) step();
  wait_for_device();
  llm::reset_peak_device_memory(device);
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < steps; ++i) step();
  wait_for_device();
  const double step_s = seconds_since(t0) / static_cast<double>(steps);
  const auto train_peak = llm::peak_device_memory(device);

  const double tokens = static_cast<double>(batch * seq_len);
  const double flops = step_flops(config, static_cast<double>(batch), static_cast<double>(seq_len),
                                  static_cast<double>(completion_len));
  const double tflops = flops / step_s / 1e12;
  const double mfu = peak_tflops > 0 ? tflops / peak_tflops : 0;
  const double host_gib = gib(llm::peak_host_memory());
  if (!json) {
    std::cout << fmt::format("{:>10} {:>8} {:>12} {:>10} {:>9} {:>6} {:>16} {:>14}\n", "quant", "step ms",
                             "tokens/s", "TFLOP/s", "MFU", "loss", "peak device GiB", "peak host GiB");
    std::cout << fmt::format("{:>10} {:>8.1f} {:>12.0f} {:>10.1f} {:>9} {:>6.3f} {:>16} {:>14.2f}\n",
                             model_options.quant, step_s * 1e3, tokens / step_s, tflops,
                             peak_tflops > 0 ? fmt::format("{:.1f}%", 100 * mfu) : "-", last_loss,
                             train_peak ? fmt::format("{:.2f}", gib(*train_peak)) : "-", host_gib);
  }
  const auto optional_gib = [](const std::optional<double>& bytes) {
    return bytes ? nlohmann::json(gib(*bytes)) : nlohmann::json();
  };
  const std::string line = nlohmann::json({{"impl", "sensecf"},
                                           {"shape", shape},
                                           {"layers", config.num_hidden_layers},
                                           {"device", model_options.device},
                                           {"dtype", model_options.dtype},
                                           {"attention", model_options.attention},
                                           {"quant", model_options.quant},
                                           {"gradient_checkpointing", checkpointing},
                                           {"batch", batch},
                                           {"seq_len", seq_len},
                                           {"completion_len", completion_len},
                                           {"head_chunk", head_chunk},
                                           {"r", r},
                                           {"trainable_params", trainable},
                                           {"steps", steps},
                                           {"step_ms", step_s * 1e3},
                                           {"tokens_per_s", tokens / step_s},
                                           {"model_tflop_per_step", flops / 1e12},
                                           {"tflop_per_s", tflops},
                                           {"peak_tflops", peak_tflops},
                                           {"mfu", mfu},
                                           {"loss", last_loss},
                                           {"peak_device_gib", optional_gib(train_peak)},
                                           {"load_peak_device_gib", optional_gib(load_peak)},
                                           {"peak_host_gib", host_gib}})
                               .dump() +
                           "\n";
  if (json) std::cout << line;
  if (!json_out.empty()) {
    std::ofstream out(json_out, std::ios::app);
    out << line;
    if (!out) throw Error("cannot write '" + json_out + "'", "is the directory writable?");
  }
  return 0;
}

}  // namespace

int cmd_lm_bench_train(const std::vector<std::string>& args) { return lm_bench_train(args); }

}  // namespace sensecf::cli
