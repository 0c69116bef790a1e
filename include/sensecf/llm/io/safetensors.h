// safetensors files (Hugging Face): header parser and validator, a read-only
// memory-mapped reader, a writer, and the JSON of a sharded checkpoint's index
// (model.safetensors.index.json; pytorch_model.bin.index.json is the same).
//
// Layout (huggingface/safetensors): 8-byte little-endian u64 N; N bytes of UTF-8
// JSON {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]},
// ..., "__metadata__": {str: str}}; then the byte buffer. Offsets are relative to
// the buffer (file offset 8 + N), end is one past. Tensors are little-endian,
// row-major, without strides.
//
// Validation follows the reference's `validate`: every field is checked, and
// the tensors must tile the buffer exactly (sorted by offset: the first begins at
// 0, each begins where the previous ended, the last ends at the buffer's end) —
// gaps and overlaps are both refused. Every error names the file, the tensor and
// what was expected.
//
// Torch-free on purpose: the fuzz target and the tools link it without LibTorch.
// Checkpoint directories of either format (one file or shards behind an index)
// are checkpoint.h; conversion to torch tensors is weights.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sensecf/llm/io/mapped_file.h"

namespace sensecf::llm {

// In the reference's declaration order, which is ascending alignment; the writer
// sorts by this order descending, then by name.
enum class Dtype {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64
};

std::size_t dtype_size(Dtype dtype);
const char* dtype_name(Dtype dtype);  // "BF16", ...
std::optional<Dtype> parse_dtype_name(std::string_view name);

inline constexpr std::uint64_t kMaxHeaderSize = 100'000'000;  // the reference's MAX_HEADER_SIZE

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // in the byte buffer, end one past
  std::uint64_t numel() const;
  std::uint64_t n_bytes() const { return end - begin; }
};

struct Header {
  std::vector<TensorInfo> tensors;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
  std::uint64_t header_size = 0;                          // N
  std::uint64_t data_start = 0;                           // 8 + N: file offset of the byte buffer
  std::uint64_t buffer_size = 0;                          // file size - data_start
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
};

// Parses and validates the header of a safetensors file whose first bytes are
// `bytes` (at least the 8 + N header bytes, usually the whole mapped file) and
// whose total size is `file_size`. `source` names the file in error messages.
// Throws sensecf::Error on anything malformed, never crashes (fuzzed).
Header parse_header(const std::uint8_t* bytes, std::size_t n_bytes, std::uint64_t file_size,
                    const std::string& source);

// The bytes of one tensor inside a mapped file; valid while the file is open.
struct TensorView {
  const TensorInfo* info = nullptr;
  const std::uint8_t* data = nullptr;
  std::size_t n_bytes = 0;
};

// A safetensors file mapped read-only (mmap, MAP_PRIVATE). Move-only.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);
  SafetensorsFile(SafetensorsFile&& other) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept = default;

  const std::string& path() const { return path_; }
  const Header& header() const { return header_; }
  bool contains(const std::string& name) const { return header_.find(name) != nullptr; }
  TensorView tensor(const std::string& name) const;  // throws naming the file when absent

 private:
  SafetensorsFile() = default;
  std::string path_;
  Header header_;
  MappedFile file_;
};

// One tensor to write: `data` points at n_bytes little-endian row-major bytes
// (n_bytes must equal numel × dtype size).
struct TensorData {
  Dtype dtype = Dtype::kF32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  std::size_t n_bytes = 0;
};

// The 8-byte length and the JSON header (padded with spaces to a multiple of 8)
// for these tensors, laid out as the reference writer does: sorted by dtype
// alignment descending, then by name. Exposed for tests.
std::string serialize_header(const std::map<std::string, TensorData>& tensors,
                             const std::map<std::string, std::string>& metadata);
// Writes a safetensors file (to path + ".tmp", then renamed into place).
void write_safetensors(const std::string& path, const std::map<std::string, TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: shard file}}.
struct ShardIndex {
  std::map<std::string, std::string> weight_map;
  std::vector<std::string> shards;  // distinct shard file names, sorted
};
ShardIndex read_shard_index(const std::string& path);
// Writes an index for `weight_map` with metadata.total_size = `total_size`.
void write_shard_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                       std::uint64_t total_size);

}  // namespace sensecf::llm
