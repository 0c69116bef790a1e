// A Hugging Face checkpoint of either weight format behind one class: a model
// directory holding model.safetensors, model.safetensors.index.json and its
// shards, pytorch_model.bin, or pytorch_model.bin.index.json and its shards; or
// a path to one such file or index.
//
// The format readers parse and validate each file (SafetensorsFile in
// safetensors.h, TorchBinFile in torch_bin.h); this class picks the files, runs
// the cross-checks of a sharded index, which are the same for both formats
// (every shard it names exists, every tensor it maps is in that shard and in no
// other, no shard holds a tensor it does not list), and hands out each tensor
// as its dtype, shape, strides and bytes.
//
// Torch-free, like the readers; weights.h turns the tensors into LibTorch
// tensors (load_weights, map_weights).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sensecf/llm/io/mapped_file.h"
#include "sensecf/llm/io/safetensors.h"

namespace sensecf::llm {

enum class CheckpointFormat { kSafetensors, kTorchBin };
const char* checkpoint_format_name(CheckpointFormat format);  // "safetensors" | "pytorch_model.bin"

// One tensor of an open checkpoint: a strided view (in elements) of bytes in a
// mapped file, valid while the Checkpoint is open. A safetensors tensor is
// row-major and `storage` is exactly its own bytes; a pickle tensor views its
// storage, which other tensors may share.
struct CheckpointTensor {
  Dtype dtype = Dtype::kF32;
  std::vector<std::int64_t> shape, stride;
  std::int64_t storage_offset = 0;
  ByteSpan storage;
  std::uint64_t numel() const;
};

class Checkpoint {
 public:
  // Which files `path` stands for:
  //   a directory: model.safetensors, else model.safetensors.index.json, else
  //     pytorch_model.bin, else pytorch_model.bin.index.json (safetensors wins,
  //     as in transformers);
  //   a file: an index when its name ends in .index.json (of pickle shards when
  //     it ends in .bin.index.json), a pickle when it ends in .bin, else
  //     safetensors.
  // Opening validates every file and the index. Throws sensecf::Error naming
  // the file and the problem.
  static Checkpoint open(const std::string& path);

  Checkpoint(Checkpoint&& other) noexcept;
  Checkpoint& operator=(Checkpoint&& other) noexcept;
  ~Checkpoint();

  const std::string& path() const { return path_; }
  CheckpointFormat format() const { return format_; }
  // The weight files read: the one file, or the shards in the index's order.
  const std::vector<std::string>& files() const { return files_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  // Throws naming the checkpoint when it has no such tensor.
  CheckpointTensor tensor(const std::string& name) const;

  class Reader;  // one open file of either format (checkpoint.cpp)

 private:
  Checkpoint() = default;
  std::string path_;
  CheckpointFormat format_ = CheckpointFormat::kSafetensors;
  std::vector<std::string> files_;
  std::vector<std::unique_ptr<const Reader>> readers_;  // parallel to files_
  std::map<std::string, std::size_t> where_;            // tensor -> index into readers_
};

}  // namespace sensecf::llm
