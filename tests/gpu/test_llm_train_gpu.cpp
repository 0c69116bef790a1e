// LoRA / QLoRA training on a CUDA device, against the CPU path (which
// tests/python/test_finetune_golden.py ties to PyTorch's optimiser and
// test_nf4_golden.py to a NumPy NF4): NF4 quantisation on the GPU gives the
// CPU's bytes, fp32 fine-tuning on the GPU gives the CPU's loss curve, and a
// bf16 QLoRA (nf4-dq) run trains with finite, falling losses; the chunked
// LM-head loss equals the one-chunk path on the GPU too, and the peak device
// memory figure (lm bench-train, the trainer's progress line) is the CUDA
// allocator's.
//
// Skips, saying so, where no CUDA device is visible; scripts/device/gpu-check
// runs it on a GPU machine and the "measured: ..." lines record the numbers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>

#include "llm_util.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/decoder.h"
#include "sensecf/llm/model/device_memory.h"
#include "sensecf/llm/model/nf4.h"
#include "sensecf/llm/train/trainer.h"

namespace sensecf::llm {
namespace {

TEST(GpuTrain, Nf4OnCudaGivesTheCpuBytes) {
  SENSECF_REQUIRE_CUDA();
  torch::manual_seed(3);
  const auto w = torch::randn({256, 320}) * 0.02;
  for (bool dq : {false, true}) {
    const auto cpu = quantize_nf4(w, 64, dq), gpu = quantize_nf4(w.to(torch::kCUDA), 64, dq);
    EXPECT_TRUE(torch::equal(cpu.packed, gpu.packed.cpu())) << "double quant " << dq;
    const auto diff = (cpu.dequantize(torch::kFloat32) - gpu.dequantize(torch::kFloat32).cpu()).abs().max();
    std::cout << "measured: nf4" << (dq ? "-dq" : "") << " dequantised CPU vs CUDA max diff "
              << diff.item<double>() << "\n";
    EXPECT_LE(diff.item<double>(), 1e-7);
  }
}

FinetuneOptions run_options(const test::TempDir& dir, const std::string& device, const std::string& dtype,
                            const std::string& quant, const std::string& out) {
  std::string data;
  for (int i = 0; i < 16; ++i) {
    data += "{\"prompt\": \"steps " + std::to_string(900 + 131 * i) + ". change:\", \"completion\": \" steps " +
            std::to_string(6000 + 50 * i) + "\"}\n";
  }
  FinetuneOptions o;
  o.model_dir = test::tiny_checkpoint("llama");
  o.data_path = dir.write("d.jsonl", data);
  o.out_dir = dir.file(out);
  o.model.device = device;
  o.model.dtype = dtype;
  o.model.quant = quant;
  o.dropout = 0;
  o.batch_size = 4;
  o.grad_accum = 2;
  o.max_steps = 6;
  o.lr = 5e-3;
  o.eval_fraction = 0;
  o.log_every = 0;
  return o;
}

TEST(GpuTrain, Fp32FineTuningOnCudaGivesTheCpuCurve) {
  SENSECF_REQUIRE_CUDA();
  test::TempDir dir;
  const auto cpu = finetune(run_options(dir, "cpu", "float32", "none", "cpu"));
  const auto gpu = finetune(run_options(dir, "cuda:0", "float32", "none", "gpu"));
  ASSERT_EQ(cpu.curve.size(), gpu.curve.size());
  double worst = 0;
  for (std::size_t i = 0; i < cpu.curve.size(); ++i)
    worst = std::max(worst, std::abs(cpu.curve[i].loss - gpu.curve[i].loss) / cpu.curve[i].loss);
  std::cout << "measured: fp32 loss curve CPU vs CUDA max relative diff " << worst << "; CUDA "
            << gpu.tokens_per_second << " tokens/s\n";
  EXPECT_LT(worst, 1e-4);
}

TEST(GpuTrain, Bf16QLoraTrainsOnCuda) {
  SENSECF_REQUIRE_CUDA();
  test::TempDir dir;
  auto o = run_options(dir, "cuda:0", "bfloat16", "nf4-dq", "qlora");
  o.max_steps = 12;
  o.lr = 2e-2;
  o.batch_size = 16;  // every example in every step
  o.grad_accum = 1;
  const auto r = finetune(o);
  for (const auto& p : r.curve) EXPECT_TRUE(std::isfinite(p.loss)) << "step " << p.step;
  std::cout << "measured: bf16 QLoRA loss " << r.curve.front().loss << " -> " << r.curve.back().loss << ", "
            << r.tokens_per_second << " tokens/s\n";
  EXPECT_LT(r.curve.back().loss, r.curve.front().loss);
}

TEST(GpuTrain, Fp16LoRaTrainsWithLossScalingOnCuda) {
  SENSECF_REQUIRE_CUDA();
  test::TempDir dir;
  auto o = run_options(dir, "cuda:0", "float16", "none", "fp16");
  o.max_steps = 12;
  o.lr = 2e-2;
  o.batch_size = 16;
  o.grad_accum = 1;
  const auto r = finetune(o);
  int finite = 0;
  for (const auto& p : r.curve) finite += std::isfinite(p.loss) ? 1 : 0;
  std::cout << "measured: fp16 LoRA loss " << r.curve.front().loss << " -> " << r.curve.back().loss << " ("
            << finite << "/" << r.curve.size() << " finite steps)\n";
  EXPECT_LT(r.curve.back().loss, r.curve.front().loss);
}

TEST(GpuTrain, ChunkedHeadLossOnCudaEqualsTheOneChunkPath) {
  SENSECF_REQUIRE_CUDA();
  ModelOptions options;
  options.device = "cuda:0";
  options.dtype = "float32";
  const auto model = Decoder::load(test::tiny_checkpoint("llama"), options);
  LoraConfig lora;
  lora.r = 4;
  lora.lora_alpha = 8;
  lora.targets = LoraConfig::Targets::kAllLinear;
  model->attach(init_lora_adapter(lora, model->config(), LoraInit::kRandom, 7));
  model->set_lora_trainable();
  // Three full rows of 40 tokens; all 117 next-token terms (the trainer's batches live on the device).
  const auto ids = torch::randint(0, model->config().vocab_size, {3, 40}, torch::kInt64).to(torch::kCUDA);
  const auto mask = torch::ones({3, 40}, torch::kInt64).to(torch::kCUDA);
  const auto rows = torch::arange(3).repeat_interleave(39).to(torch::kCUDA);
  const auto cols = torch::arange(39).repeat({3}).to(torch::kCUDA);
  const auto targets = ids.narrow(1, 1, 39).reshape({-1});
  std::vector<torch::Tensor> grads[2];
  double losses[2];
  for (int chunked = 0; chunked < 2; ++chunked) {
    const auto loss = model->loss_sum_at(ids, mask, rows, cols, targets, chunked ? 16 : 1000);
    loss.backward();
    losses[chunked] = loss.item<double>();
    for (auto& [name, t] : model->lora_parameters()) {
      grads[chunked].push_back(t.grad().cpu().clone());
      t.mutable_grad() = torch::Tensor();
    }
  }
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < grads[0].size(); ++i) {
    worst = std::max(worst, (grads[0][i] - grads[1][i]).abs().max().item<double>());
    scale = std::max(scale, grads[0][i].abs().max().item<double>());
  }
  std::cout << "measured: chunked head on CUDA, loss rel diff " << std::abs(losses[1] - losses[0]) / losses[0]
            << ", gradient max diff " << worst << " of " << scale << "\n";
  EXPECT_LE(std::abs(losses[1] - losses[0]), 1e-5 * losses[0]);
  EXPECT_LE(worst, 1e-4 * scale);
}

TEST(GpuTrain, PeakDeviceMemoryIsTheAllocatorsPeak) {
  SENSECF_REQUIRE_CUDA();
  const c10::Device cuda("cuda:0");
  reset_peak_device_memory(cuda);
  const auto base = peak_device_memory(cuda);
  ASSERT_TRUE(base.has_value()) << "no figure on CUDA: the build lacks the CUDA paths (SENSECF_TORCH_CUDA)";
  {
    const auto big = torch::empty({64 << 20}, torch::TensorOptions().dtype(torch::kFloat32).device(cuda));  // 256 MiB
    EXPECT_GE(*peak_device_memory(cuda), *base + 256.0 * (1 << 20));
  }
  const double after = *peak_device_memory(cuda);
  reset_peak_device_memory(cuda);
  EXPECT_LT(*peak_device_memory(cuda), after - 255.0 * (1 << 20)) << "the reset did not start a new peak";
  EXPECT_FALSE(peak_device_memory(c10::Device("cpu")).has_value());
}

}  // namespace
}  // namespace sensecf::llm
