// Random tiny Llama / Mistral checkpoints in the Hugging Face layout.
#include "sensecf/llm/model/tiny.h"

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llm/io/weights.h"

namespace sensecf::llm {

void write_tiny_checkpoint(const std::string& dir, const std::string& family_name, std::uint64_t seed) {
  const Family family = parse_family(family_name);
  std::filesystem::create_directories(dir);
  const std::string tokenizer_path = dir + "/tokenizer.json";
  write_tiny_tokenizer(tokenizer_path, family_name);
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  ModelConfig config = ModelConfig::tiny(family, tokenizer.vocab_size());
  if (family == Family::kLlama) {
    config.bos_token_id = tokenizer.token_id("<|begin_of_text|>").value_or(-1);
    config.eos_token_ids = {tokenizer.token_id("<|end_of_text|>").value_or(-1), tokenizer.token_id("<|eot_id|>").value_or(-1)};
  } else {
    config.bos_token_id = tokenizer.token_id("<s>").value_or(-1);
    config.eos_token_ids = {tokenizer.token_id("</s>").value_or(-1)};
  }
  {
    std::ofstream out(dir + "/config.json");
    out << config.to_json();
    if (!out) throw Error("cannot write '" + dir + "/config.json'");
  }
  torch::manual_seed(seed);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& [name, shape] : expected_tensor_shapes(config)) {
    const bool norm = name.find("norm.weight") != std::string::npos;
    weights[name] = norm ? 1.0 + 0.1 * torch::randn(shape) : 0.02 * torch::randn(shape);
  }
  save_weights(dir + "/model.safetensors", weights, {{"format", "pt"}});
}

WeightMap random_weights(const ModelConfig& config, c10::ScalarType dtype, c10::Device device, std::uint64_t seed) {
  torch::manual_seed(seed);
  if (device.is_cuda()) torch::cuda::manual_seed_all(seed);
  WeightMap weights;
  const auto options = torch::TensorOptions().device(device).dtype(torch::kFloat32);
  for (const auto& [name, shape] : expected_tensor_shapes(config)) {
    const bool norm = name.find("norm.weight") != std::string::npos;
    // One fp32 temporary per tensor (the largest is vocab x hidden), then cast.
    auto w = torch::randn(shape, options);
    w = norm ? w.mul_(0.1).add_(1.0) : w.mul_(0.02);
    weights[name] = w.to(dtype);
  }
  return weights;
}

}  // namespace sensecf::llm
