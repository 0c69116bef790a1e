// The LoRA linear layer and PEFT adapter directories on LibTorch (see lora.h).
//
// Shapes: r LoRA rank, in / out the linear layer's input / output width.
#include "sensecf/llm/lora/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/weights.h"

namespace sensecf::llm {
namespace {

namespace fs = std::filesystem;

std::string shown_problems(const std::vector<std::string>& problems) {
  std::string text;
  const std::size_t shown = std::min<std::size_t>(problems.size(), 12);
  for (std::size_t i = 0; i < shown; ++i) text += "\n  " + problems[i];
  if (shown < problems.size()) text += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
  return text;
}

}  // namespace

torch::Tensor LoraLinear::forward(const torch::Tensor& x) const {
  auto y = nf4 ? nf4_linear(x, *nf4) : torch::matmul(x, weight.t());  // [..., out]
  if (!has_adapter() || folded) return y;
  // PEFT: result + lora_B(lora_A(x.to(A.dtype))) * scaling, then back to result's dtype.
  auto x_lora = x.to(lora_A.scalar_type());
  if (dropout > 0) x_lora = torch::dropout(x_lora, dropout, /*train=*/true);
  const auto xa = torch::matmul(x_lora, lora_A.t());  // [..., r]
  return (y + torch::matmul(xa, lora_B.t()) * scaling).to(y.scalar_type());
}

void LoraLinear::merge() {
  if (!has_adapter()) return;
  if (nf4) {
    throw UsageError("an adapter cannot be merged into NF4 weights",
                     "load the model without --quant to merge, or keep the adapter unmerged");
  }
  const auto type = at::promote_types(weight.scalar_type(), torch::kFloat32);  // fp32; fp64 for a float64 model
  const auto delta = torch::matmul(lora_B.to(type), lora_A.to(type)) * scaling;  // [out, in]
  weight = (weight.to(type) + delta).to(weight.scalar_type()).contiguous();
  lora_A = torch::Tensor();
  lora_B = torch::Tensor();
  scaling = 0;
}

namespace {
torch::Tensor lora_delta(const LoraLinear& l, c10::ScalarType type) {
  return torch::matmul(l.lora_B.detach().to(type), l.lora_A.detach().to(type)) * l.scaling;  // [out, in]
}
}  // namespace

void LoraLinear::fold_in() {
  if (!has_adapter() || folded) return;
  if (nf4) throw UsageError("an adapter cannot be merged into NF4 weights", "keep the adapter unmerged");
  torch::NoGradGuard no_grad;
  const auto type = at::promote_types(weight.scalar_type(), torch::kFloat32);
  weight = (weight.to(type) + lora_delta(*this, type)).to(weight.scalar_type()).contiguous();
  folded = true;
}

void LoraLinear::fold_out() {
  if (!has_adapter() || !folded) return;
  torch::NoGradGuard no_grad;
  const auto type = at::promote_types(weight.scalar_type(), torch::kFloat32);
  weight = (weight.to(type) - lora_delta(*this, type)).to(weight.scalar_type()).contiguous();
  folded = false;
}

LoraAdapter load_lora_adapter(const std::string& dir, const ModelConfig& model, c10::Device device) {
  LoraAdapter adapter;
  adapter.config = load_lora_config(dir);
  adapter.modules = resolve_lora_modules(adapter.config, model);
  std::error_code ec;
  const fs::path base = fs::is_directory(dir, ec) ? fs::path(dir) : fs::path(dir).parent_path();
  // PEFT writes adapter_model.safetensors (safe_serialization, the default) or,
  // older and on request, a torch.save pickle adapter_model.bin (read by the
  // restricted unpickler of torch_bin.h); safetensors wins when both are there.
  std::string file = (base / "adapter_model.safetensors").string();
  if (!fs::exists(file, ec) && fs::exists(base / "adapter_model.bin", ec)) file = (base / "adapter_model.bin").string();
  if (!fs::exists(file, ec)) {
    throw UsageError("no adapter_model.safetensors (or adapter_model.bin) in " + base.string(),
                     "a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors");
  }
  WeightMap tensors = load_weights(file, torch::kFloat32, device);
  std::map<std::string, std::vector<std::int64_t>> shapes;
  for (const auto& [name, t] : tensors) shapes[name] = t.sizes().vec();
  const AdapterTensors matched = match_adapter_tensors(adapter.modules, shapes);
  if (!matched.problems.empty()) {
    const std::string base_model = adapter.config.base_model_name_or_path.empty()
                                       ? std::string()
                                       : " (it was made for " + adapter.config.base_model_name_or_path + ")";
    throw Error(file + " does not fit " + adapter.config.source + " and the model (" +
                    std::to_string(matched.problems.size()) + " problems):" + shown_problems(matched.problems),
                "is the adapter for this model" + base_model + ", and are its two files from the same save?");
  }
  for (const auto& m : adapter.modules) {
    // The stored tensor of m's A or B, which must be finite.
    auto finite_tensor = [&](char which) {
      const auto& stored = matched.stored.at(lora_tensor_name(m.name, which));
      const torch::Tensor& t = tensors.at(stored);
      if (!torch::isfinite(t).all().item<bool>()) {
        throw Error(file + ": tensor '" + stored + "' holds NaN or infinite values; the adapter would turn every "
                        "output into NaN",
                    "the fine-tuning run that wrote it diverged: retrain with a lower learning rate, or use an "
                    "earlier checkpoint");
      }
      return t;
    };
    adapter.weights[m.name] = {finite_tensor('A'), finite_tensor('B')};
  }
  return adapter;
}

const char* lora_init_name(LoraInit init) { return init == LoraInit::kZero ? "zero" : "random"; }

LoraInit parse_lora_init(const std::string& name) {
  if (name == "zero") return LoraInit::kZero;
  if (name == "random") return LoraInit::kRandom;
  throw UsageError("unknown LoRA init '" + name + "'", "use zero (PEFT's no-op start) or random");
}

LoraAdapter init_lora_adapter(const LoraConfig& config, const ModelConfig& model, LoraInit init,
                              std::uint64_t seed) {
  LoraAdapter adapter;
  adapter.config = config;
  adapter.config.init_lora_weights = init == LoraInit::kZero;
  adapter.modules = resolve_lora_modules(adapter.config, model);
  auto gen = at::detail::createCPUGenerator(seed);
  for (const auto& m : adapter.modules) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(m.in_features));
    auto A = torch::empty({m.r, m.in_features}, torch::kFloat32).uniform_(-bound, bound, gen);
    auto B = init == LoraInit::kZero ? torch::zeros({m.out_features, m.r}, torch::kFloat32)
                                     : 0.02 * torch::randn({m.out_features, m.r}, gen, torch::kFloat32);
    adapter.weights[m.name] = {A, B};
  }
  return adapter;
}

void save_lora_adapter(const std::string& dir, const LoraAdapter& adapter,
                       const std::map<std::string, std::string>& metadata) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create directory " + dir + ": " + ec.message());
  WeightMap tensors;
  for (const auto& m : adapter.modules) {
    const auto it = adapter.weights.find(m.name);
    if (it == adapter.weights.end()) throw Error("save_lora_adapter: no tensors for module " + m.name);
    tensors[lora_tensor_name(m.name, 'A')] = it->second.first.to(torch::kFloat32);
    tensors[lora_tensor_name(m.name, 'B')] = it->second.second.to(torch::kFloat32);
  }
  save_weights((fs::path(dir) / "adapter_model.safetensors").string(), tensors, metadata);
  const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
  std::ofstream out(config_path);
  out << adapter.config.to_json();
  if (!out) throw Error("cannot write " + config_path);
}

}  // namespace sensecf::llm
