// Checkpoint weights as LibTorch tensors: load a Hugging Face checkpoint
// (model.safetensors, or shards behind model.safetensors.index.json; or
// pytorch_model.bin, or shards behind pytorch_model.bin.index.json) into a
// name -> tensor map converted to a dtype and device; save such a map as
// safetensors (one file, or shards with an index, as save_pretrained does);
// check a map against a ModelConfig.
//
// Loading reads the memory-mapped files of a Checkpoint (checkpoint.h: F32,
// F16, BF16 and F64 sources) and copies each tensor once into the requested
// dtype/device, contiguous (a pickle's strided views and shared storages
// included); the mapping is closed before returning. See docs/checkpoints.md.
//
// Only light ATen/c10 headers here; <torch/torch.h> is included by weights.cpp.
// Pass torch::kFloat32 / torch::kCUDA etc. as usual (same types).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <map>
#include <string>

#include "sensecf/llm/io/config.h"

namespace sensecf::llm {

using WeightMap = std::map<std::string, at::Tensor>;

// `path`: a model directory, one .safetensors or .bin file, or an index (see
// Checkpoint::open; safetensors wins when a directory has both formats).
WeightMap load_weights(const std::string& path, c10::ScalarType dtype = c10::ScalarType::Float,
                       c10::Device device = c10::Device(c10::DeviceType::CPU));

// The tensors of the checkpoint at `path` as stored (any dtype LibTorch has, on
// the CPU, a pickle's strided views kept as views) without copying them: each
// is a view of the read-only file mapping, which stays open until the last
// tensor is released. Never write into them (in-place ops crash); data that a
// writer left unaligned is copied. For converting checkpoints (`lm convert`).
WeightMap map_weights(const std::string& path);

// One safetensors file. Tensors are written from CPU contiguous copies in their
// own dtype. `metadata` gets "format": "pt" unless it sets "format" itself
// (transformers refuses safetensors files without it).
void save_weights(const std::string& path, const WeightMap& weights,
                  const std::map<std::string, std::string>& metadata = {});

// save_pretrained's layout in directory `dir` (created if needed): shards
// model-0000i-of-0000n.safetensors of at most `max_shard_bytes` each (a larger
// tensor gets a shard of its own) plus model.safetensors.index.json; a single
// shard is written as model.safetensors without an index.
void save_weights_sharded(const std::string& dir, const WeightMap& weights, std::uint64_t max_shard_bytes,
                          const std::map<std::string, std::string>& metadata = {});

// Missing, unexpected and wrongly shaped tensors by HF name (empty when the map
// fits `config`). lm_head.weight may be absent iff tie_word_embeddings; the
// legacy buffers *.rotary_emb.inv_freq are ignored.
std::vector<std::string> weight_problems(const ModelConfig& config, const WeightMap& weights);
// Throws sensecf::Error listing weight_problems when there are any.
void check_weights(const ModelConfig& config, const WeightMap& weights);

}  // namespace sensecf::llm
