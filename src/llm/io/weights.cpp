// Checkpoint <-> LibTorch tensors (see weights.h).
#include "sensecf/llm/io/weights.h"

#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/checkpoint.h"
#include "sensecf/llm/io/safetensors.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; so must the host be");

namespace sensecf::llm {
namespace {

namespace fs = std::filesystem;

torch::ScalarType torch_type(Dtype dtype, const std::string& where) {
  switch (dtype) {
    case Dtype::kF32:
      return torch::kFloat32;
    case Dtype::kF16:
      return torch::kFloat16;
    case Dtype::kBF16:
      return torch::kBFloat16;
    case Dtype::kF64:
      return torch::kFloat64;
    default:
      throw Error(where + " has dtype " + dtype_name(dtype) + "; weights must be F32, F16, BF16 or F64",
                  "quantized or integer checkpoints are not supported");
  }
}

Dtype safetensors_type(torch::ScalarType type, const std::string& name) {
  switch (type) {
    case torch::kFloat32:
      return Dtype::kF32;
    case torch::kFloat16:
      return Dtype::kF16;
    case torch::kBFloat16:
      return Dtype::kBF16;
    case torch::kFloat64:
      return Dtype::kF64;
    case torch::kInt64:
      return Dtype::kI64;
    case torch::kInt32:
      return Dtype::kI32;
    case torch::kInt16:
      return Dtype::kI16;
    case torch::kInt8:
      return Dtype::kI8;
    case torch::kUInt8:
      return Dtype::kU8;
    case torch::kBool:
      return Dtype::kBool;
    default:
      throw Error("save_weights: tensor '" + name + "' has dtype " + std::string(c10::toString(type)) +
                  ", which safetensors cannot store");
  }
}

// Any dtype LibTorch 1.13 has (map_weights keeps integer buffers too).
torch::ScalarType any_torch_type(Dtype dtype, const std::string& where) {
  switch (dtype) {
    case Dtype::kF32:
    case Dtype::kF16:
    case Dtype::kBF16:
    case Dtype::kF64:
      return torch_type(dtype, where);
    case Dtype::kI64:
      return torch::kInt64;
    case Dtype::kI32:
      return torch::kInt32;
    case Dtype::kI16:
      return torch::kInt16;
    case Dtype::kI8:
      return torch::kInt8;
    case Dtype::kU8:
      return torch::kUInt8;
    case Dtype::kBool:
      return torch::kBool;
    default:
      throw Error(where + " has dtype " + dtype_name(dtype) + ", which LibTorch 1.13 cannot hold",
                  "use the model's float32, float16 or bfloat16 weights");
  }
}

// `n_bytes` bytes at `data` in a read-only mapping as a 1-D CPU tensor of
// `numel` elements: a view whose deleter keeps `keep` (the mapping's owner)
// alive, or an aligned copy when the writer left the data unaligned.
torch::Tensor view_bytes(const std::uint8_t* data, std::size_t n_bytes, std::int64_t numel,
                         torch::ScalarType type, const std::shared_ptr<const void>& keep) {
  const auto options = torch::dtype(type);
  if (n_bytes == 0) return torch::empty({numel}, options);
  if (reinterpret_cast<std::uintptr_t>(data) % c10::elementSize(type) == 0) {
    // Never written: only copied from (load_weights) or written out (save_weights).
    return torch::from_blob(
        const_cast<std::uint8_t*>(data), {numel}, [keep](void*) { (void)keep; }, options);
  }
  auto copy = torch::empty({numel}, options);
  std::memcpy(copy.data_ptr(), data, n_bytes);
  return copy;
}

// A checkpoint's tensor as a view_bytes view of its mapped file (which stays
// open while the view lives): safetensors tensors as they are, pickle tensors as
// strided views of their storage.
torch::Tensor view_tensor(const std::shared_ptr<const Checkpoint>& checkpoint, const std::string& name,
                          const CheckpointTensor& t) {
  const auto type = any_torch_type(t.dtype, checkpoint->path() + ": tensor '" + name + "'");
  const auto numel = static_cast<std::int64_t>(t.storage.size / dtype_size(t.dtype));
  return view_bytes(t.storage.data, t.storage.size, numel, type, checkpoint)
      .as_strided(t.shape, t.stride, t.storage_offset);
}

// CPU contiguous copies (kept alive while writing) and their byte views.
struct Prepared {
  std::vector<torch::Tensor> keep;
  std::map<std::string, TensorData> data;
};

Prepared prepare(const WeightMap& weights) {
  Prepared p;
  for (const auto& [name, tensor] : weights) {
    if (!tensor.defined()) throw Error("save_weights: tensor '" + name + "' is undefined");
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    TensorData d;
    d.dtype = safetensors_type(t.scalar_type(), name);
    d.shape = t.sizes().vec();
    d.data = t.data_ptr();
    d.n_bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
    p.keep.push_back(t);
    p.data.emplace(name, d);
  }
  return p;
}

std::map<std::string, std::string> with_format(std::map<std::string, std::string> metadata) {
  metadata.emplace("format", "pt");
  return metadata;
}

}  // namespace

WeightMap load_weights(const std::string& path, c10::ScalarType dtype, c10::Device device) {
  const auto checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(path));
  WeightMap out;
  for (const auto& name : checkpoint->names()) {
    const CheckpointTensor t = checkpoint->tensor(name);
    torch_type(t.dtype, checkpoint->path() + ": tensor '" + name + "'");  // weights are floats
    // copy=true: the result must own its memory, the mapping closes on return;
    // contiguous: a pickle's tensors may be strided views.
    out.emplace(name, view_tensor(checkpoint, name, t).to(device, dtype, /*non_blocking=*/false, /*copy=*/true,
                                                          c10::MemoryFormat::Contiguous));
  }
  return out;
}

WeightMap map_weights(const std::string& path) {
  const auto checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(path));
  WeightMap out;
  for (const auto& name : checkpoint->names()) out.emplace(name, view_tensor(checkpoint, name, checkpoint->tensor(name)));
  return out;
}

void save_weights(const std::string& path, const WeightMap& weights,
                  const std::map<std::string, std::string>& metadata) {
  const Prepared p = prepare(weights);
  write_safetensors(path, p.data, with_format(metadata));
}

void save_weights_sharded(const std::string& dir, const WeightMap& weights, std::uint64_t max_shard_bytes,
                          const std::map<std::string, std::string>& metadata) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error("cannot create directory " + dir + ": " + ec.message(),
                "is the parent directory writable? Or pass another --out");
  const Prepared p = prepare(weights);
  std::vector<std::map<std::string, TensorData>> shards(1);
  std::uint64_t current = 0, total = 0;
  for (const auto& [name, d] : p.data) {
    if (!shards.back().empty() && current + d.n_bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().emplace(name, d);
    current += d.n_bytes;
    total += d.n_bytes;
  }
  const auto meta = with_format(metadata);
  if (shards.size() == 1) {
    write_safetensors((fs::path(dir) / "model.safetensors").string(), shards.front(), meta);
    return;
  }
  std::map<std::string, std::string> weight_map;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    char file[64];
    std::snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_safetensors((fs::path(dir) / file).string(), shards[i], meta);
    for (const auto& [name, d] : shards[i]) weight_map[name] = file;
  }
  write_shard_index((fs::path(dir) / "model.safetensors.index.json").string(), weight_map, total);
}

std::vector<std::string> weight_problems(const ModelConfig& config, const WeightMap& weights) {
  std::map<std::string, std::vector<std::int64_t>> found;
  for (const auto& [name, t] : weights) found[name] = t.sizes().vec();
  return tensor_shape_problems(config, found);
}

void check_weights(const ModelConfig& config, const WeightMap& weights) {
  const auto problems = weight_problems(config, weights);
  if (problems.empty()) return;
  std::string text;
  const std::size_t shown = std::min<std::size_t>(problems.size(), 12);
  for (std::size_t i = 0; i < shown; ++i) text += "\n  " + problems[i];
  if (shown < problems.size()) text += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
  throw Error(
      "the checkpoint does not fit config.json (" + std::to_string(problems.size()) + " problems):" + text,
      "are config.json and the weights from the same model?");
}

}  // namespace sensecf::llm
