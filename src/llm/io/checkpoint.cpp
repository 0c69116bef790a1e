// Checkpoints of either format (see checkpoint.h): which files a path stands
// for, the sharded index's cross-checks, and a Reader per file that hides
// whether it is a safetensors file or a torch.save archive.
#include "sensecf/llm/io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/llm/io/torch_bin.h"

namespace sensecf::llm {

namespace fs = std::filesystem;

// One open weights file: its tensor names and their views.
class Checkpoint::Reader {
 public:
  virtual ~Reader() = default;
  virtual std::vector<std::string> names() const = 0;
  virtual CheckpointTensor tensor(const std::string& name) const = 0;
};

namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

class SafetensorsReader final : public Checkpoint::Reader {
 public:
  explicit SafetensorsReader(const std::string& path) : file_(SafetensorsFile::open(path)) {}
  std::vector<std::string> names() const override {
    std::vector<std::string> names;
    for (const auto& t : file_.header().tensors) names.push_back(t.name);
    return names;
  }
  CheckpointTensor tensor(const std::string& name) const override {
    const TensorView v = file_.tensor(name);
    CheckpointTensor t;
    t.dtype = v.info->dtype;
    t.shape = v.info->shape;
    t.stride.assign(t.shape.size(), 1);  // row-major, as LibTorch computes contiguous strides
    for (std::size_t i = t.shape.size(); i-- > 1;) t.stride[i - 1] = t.stride[i] * std::max<std::int64_t>(t.shape[i], 1);
    t.storage = {v.data, v.n_bytes};
    return t;
  }

 private:
  SafetensorsFile file_;
};

class TorchBinReader final : public Checkpoint::Reader {
 public:
  explicit TorchBinReader(const std::string& path) : file_(TorchBinFile::open(path)) {}
  std::vector<std::string> names() const override {
    std::vector<std::string> names;
    for (const auto& t : file_.tensors()) names.push_back(t.name);
    return names;
  }
  CheckpointTensor tensor(const std::string& name) const override {
    const TorchTensorInfo& info = file_.tensor(name);
    CheckpointTensor t;
    t.dtype = info.dtype;
    t.shape = info.shape;
    t.stride = info.stride;
    t.storage_offset = info.storage_offset;
    t.storage = file_.storage(info);
    return t;
  }

 private:
  TorchBinFile file_;
};

std::unique_ptr<const Checkpoint::Reader> open_reader(CheckpointFormat format, const std::string& path) {
  if (format == CheckpointFormat::kTorchBin) return std::make_unique<const TorchBinReader>(path);
  return std::make_unique<const SafetensorsReader>(path);
}

// Throws, naming the index, when a shard it names is not a file in `dir`.
void check_shards_exist(const std::string& index_name, const ShardIndex& index, const fs::path& dir) {
  std::error_code ec;
  for (const auto& shard : index.shards) {
    if (fs::exists(dir / shard, ec)) continue;
    std::size_t n = 0;
    std::string example;
    for (const auto& [name, file] : index.weight_map) {
      if (file != shard) continue;
      if (n++ == 0) example = name;
    }
    throw Error(index_name + " maps " + std::to_string(n) + " tensors (e.g. " + in_quotes(example) +
                    ") to shard " + in_quotes(shard) + ", which does not exist in " + dir.string(),
                "download the missing shard or remove the index");
  }
}

// tensor -> i for the tensors found in each shard (`shard_tensors[i]` for
// index.shards[i]). Throws when a tensor is in two shards, is in a shard the
// index does not map it to, is not listed, or is listed but in no shard.
std::map<std::string, std::size_t> match_shard_index(const std::string& index_name, const ShardIndex& index,
                                                     const std::vector<std::vector<std::string>>& shard_tensors) {
  std::map<std::string, std::size_t> where;
  for (std::size_t i = 0; i < shard_tensors.size(); ++i) {
    for (const auto& name : shard_tensors[i]) {
      const auto [it, inserted] = where.emplace(name, i);
      if (!inserted) {
        throw Error(index_name + ": tensor " + in_quotes(name) + " is in two shards, " +
                        in_quotes(index.shards[it->second]) + " and " + in_quotes(index.shards[i]),
                    "the index and the shards do not belong together; download the checkpoint again");
      }
      const auto mapped = index.weight_map.find(name);
      if (mapped == index.weight_map.end()) {
        throw Error(index_name + ": shard " + in_quotes(index.shards[i]) + " holds tensor " +
                        in_quotes(name) + ", which weight_map does not list",
                    "the index and the shards do not belong together; download the checkpoint again");
      }
      if (mapped->second != index.shards[i]) {
        throw Error(index_name + ": tensor " + in_quotes(name) + " is in shard " +
                        in_quotes(index.shards[i]) + " but weight_map maps it to " +
                        in_quotes(mapped->second),
                    "the index and the shards do not belong together; download the checkpoint again");
      }
    }
  }
  for (const auto& [name, shard] : index.weight_map) {
    if (!where.count(name)) {
      throw Error(index_name + ": weight_map maps tensor " + in_quotes(name) + " to shard " +
                      in_quotes(shard) + ", which does not contain it",
                  "the shard is incomplete or from another download; download it again");
    }
  }
  return where;
}

// The files of each format a model directory may hold, in the order they are looked for.
struct DirectoryEntry {
  const char* name;
  CheckpointFormat format;
  bool index;
};
constexpr DirectoryEntry kDirectoryEntries[] = {
    {"model.safetensors", CheckpointFormat::kSafetensors, false},
    {"model.safetensors.index.json", CheckpointFormat::kSafetensors, true},
    {"pytorch_model.bin", CheckpointFormat::kTorchBin, false},
    {"pytorch_model.bin.index.json", CheckpointFormat::kTorchBin, true},
};

}  // namespace

const char* checkpoint_format_name(CheckpointFormat format) {
  return format == CheckpointFormat::kTorchBin ? "pytorch_model.bin" : "safetensors";
}

std::uint64_t CheckpointTensor::numel() const {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

Checkpoint::Checkpoint(Checkpoint&& other) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&& other) noexcept = default;
Checkpoint::~Checkpoint() = default;

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  c.path_ = path;
  std::error_code ec;
  const fs::path p(path);
  fs::path file;
  bool index = false;
  if (fs::is_directory(p, ec)) {
    for (const auto& entry : kDirectoryEntries) {
      if (!fs::exists(p / entry.name, ec)) continue;
      file = p / entry.name;
      c.format_ = entry.format;
      index = entry.index;
      break;
    }
    if (file.empty()) {
      throw Error(path + " has none of model.safetensors, model.safetensors.index.json, pytorch_model.bin, " +
                      "pytorch_model.bin.index.json",
                  "point --model at a Hugging Face model directory (or one .safetensors or .bin file)");
    }
  } else if (fs::is_regular_file(p, ec)) {
    const std::string name = p.filename().string();
    file = p;
    index = ends_with(name, ".index.json");
    c.format_ = ends_with(name, index ? ".bin.index.json" : ".bin") ? CheckpointFormat::kTorchBin
                                                                     : CheckpointFormat::kSafetensors;
  } else {
    throw Error(path + ": no such file or directory",
                "point --model at a Hugging Face model directory (or one .safetensors or .bin file)");
  }

  if (!index) {
    c.files_.push_back(file.string());
    c.readers_.push_back(open_reader(c.format_, file.string()));
    for (const auto& name : c.readers_.front()->names()) c.where_.emplace(name, 0);
    return c;
  }
  const std::string index_path = file.string();
  const ShardIndex shard_index = read_shard_index(index_path);
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  check_shards_exist(index_path, shard_index, dir);
  std::vector<std::vector<std::string>> shard_tensors;
  for (const auto& shard : shard_index.shards) {
    c.files_.push_back((dir / shard).string());
    c.readers_.push_back(open_reader(c.format_, c.files_.back()));
    shard_tensors.push_back(c.readers_.back()->names());
  }
  c.where_ = match_shard_index(index_path, shard_index, shard_tensors);
  return c;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  for (const auto& [name, file] : where_) names.push_back(name);
  return names;
}

CheckpointTensor Checkpoint::tensor(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end())
    throw Error(path_ + ": checkpoint has no tensor " + in_quotes(name),
                "are config.json and the weights from the same model?");
  return readers_[it->second]->tensor(name);
}

}  // namespace sensecf::llm
