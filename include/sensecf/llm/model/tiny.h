// Random tiny checkpoints in the Hugging Face layout (config.json,
// model.safetensors, tokenizer.json): what tests, benchmarks and the quickstart
// use in place of the real 7-8B models, which cannot be downloaded here.
#pragma once

#include <cstdint>
#include <string>

#include "sensecf/llm/io/config.h"
#include "sensecf/llm/io/weights.h"

namespace sensecf::llm {

// Writes a tiny random `family` (llama | mistral) model into dir (created).
// Llama: llama3 RoPE scaling and grouped-query attention; Mistral: a sliding
// window shorter than the test sequences. Weights ~ N(0, 0.02), norms ~ 1 + N(0, 0.1).
void write_tiny_checkpoint(const std::string& dir, const std::string& family, std::uint64_t seed);

// Random weights for any config, made directly on `device` in `dtype` (an
// 8B-shaped model never exists on the host): linear and embedding weights
// ~ N(0, 0.02), norms ~ 1 + N(0, 0.1). For benchmarks at real shapes.
WeightMap random_weights(const ModelConfig& config, c10::ScalarType dtype, c10::Device device, std::uint64_t seed);

}  // namespace sensecf::llm
