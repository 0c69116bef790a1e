// LoRA on LibTorch tensors: the linear layer with an optional adapter that the
// decoder uses for q/k/v/o_proj and gate/up/down_proj (and that fine-tuning
// trains: A and B are plain tensors that can require grad; decoder.h), loading
// a PEFT adapter directory against a model, creating a fresh adapter and saving
// one in PEFT's layout.
//
// Precision follows PEFT's defaults (PeftModel autocast_adapter_dtype=True):
// A and B are held in fp32 whatever the model dtype, the LoRA branch runs in
// fp32 on an fp32 copy of x, is added to the base output and the sum is cast
// back to the model dtype. On an fp32 model that is y = x W^T + s (x A^T) B^T.
// Merging computes W + s B A in fp32 and casts once. (A float64 model, kept for
// numerical checks, holds A and B and merges in fp64: decoder.h.)
//
// Config parsing and the tensor names are torch-free, in adapter.h. Only light
// ATen/c10 headers here; lora.cpp includes <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/llm/lora/adapter.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/model/nf4.h"

namespace sensecf::llm {

// y = x W^T (+ scaling (x A^T) B^T when an adapter is attached).
struct LoraLinear {
  at::Tensor weight;  // W [out, in], model dtype; undefined when nf4 holds it
  std::shared_ptr<const Nf4Weight> nf4;  // QLoRA: W as NF4 (model/nf4.h), dequantised on the fly
  at::Tensor lora_A;  // A [r, in], fp32; undefined: no adapter
  at::Tensor lora_B;  // B [out, r], fp32
  double scaling = 0;
  // PEFT's lora_dropout on the LoRA branch's input while training (the base
  // path never sees it); 0 at inference. Draws from LibTorch's default
  // generator of x's device.
  double dropout = 0;

  bool has_adapter() const { return lora_A.defined(); }
  // x: [..., in] -> [..., out], in x's dtype.
  at::Tensor forward(const at::Tensor& x) const;
  // Folds the adapter into W (W + scaling B A in fp32, cast to W's dtype) and
  // detaches it; no-op without an adapter. Refused for NF4 weights.
  void merge();
  // PEFT's merge/unmerge of an adapter that stays attached: fold_in adds
  // scaling B A to W and keeps A and B (forward then skips the branch);
  // fold_out subtracts it again (exact up to W's rounding, as in PEFT).
  bool folded = false;
  void fold_in();
  void fold_out();
};

// An adapter's config, the modules it targets in a given model and its tensors.
struct LoraAdapter {
  LoraConfig config;
  std::vector<LoraModule> modules;
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> weights;  // module name -> {A [r, in], B [out, r]}, fp32
};

// Reads a PEFT adapter directory (adapter_config.json, adapter_model.safetensors)
// for a model of config `model`: resolves the targeted modules, then checks that
// the file holds exactly their lora_A/lora_B tensors with the shapes the config
// implies (GQA k/v widths, per-module ranks); missing, unexpected and wrongly
// shaped tensors are listed (first 12 and a count). Tensors come back in fp32 on
// `device`. Without adapter_model.safetensors, a torch.save adapter_model.bin
// is read instead (torch_bin.h).
LoraAdapter load_lora_adapter(const std::string& dir, const ModelConfig& model,
                              c10::Device device = c10::Device(c10::DeviceType::CPU));

enum class LoraInit {
  kZero,    // PEFT's init_lora_weights=True: B = 0, the adapter starts as a no-op
  kRandom,  // B ~ N(0, 0.02^2) as well: the adapter changes the outputs (tests)
};
const char* lora_init_name(LoraInit init);  // "zero" | "random"
LoraInit parse_lora_init(const std::string& name);  // throws UsageError

// A fresh adapter for `model` with A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's
// kaiming_uniform_(a=sqrt(5))) and B per `init`, drawn on the CPU from its own
// generator seeded with `seed` in module order (same seed, same adapter).
LoraAdapter init_lora_adapter(const LoraConfig& config, const ModelConfig& model, LoraInit init,
                              std::uint64_t seed);

// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (F32, the
// saved key names base_model.model.<module>.lora_A.weight) as PEFT's
// save_pretrained does; `metadata` goes into the safetensors header.
void save_lora_adapter(const std::string& dir, const LoraAdapter& adapter,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace sensecf::llm
