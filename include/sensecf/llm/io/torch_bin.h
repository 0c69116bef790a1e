// PyTorch checkpoints written by torch.save (pytorch_model.bin): a ZIP reader,
// a restricted unpickler for the state dict in data.pkl, a memory-mapped
// reader of one file and a writer. Directories (one pytorch_model.bin, or
// shards listed by pytorch_model.bin.index.json) are opened by Checkpoint
// (checkpoint.h), which reads each file through TorchBinFile.
//
// Layout (torch/serialization.py, caffe2 PyTorchStreamWriter): an uncompressed
// (STORED) ZIP archive, ZIP64 when over 4 GiB, whose entries share one prefix
// directory (`archive/`, or the file's stem): `<p>/data.pkl` the pickled object
// (protocol 2), `<p>/data/<key>` the raw little-endian bytes of storage <key>
// (64-byte aligned), `<p>/version`, and since torch 2.1 `<p>/byteorder`.
// data.pkl names each storage by a persistent id
//     ('storage', torch.<T>Storage, key, location, numel)
// and rebuilds each tensor with
//     torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
//
// The unpickler is a SAFE one: a stack machine that builds plain values (dicts,
// tuples, lists, numbers, strings, storages, tensors) and never executes or
// imports anything. Only the globals a state dict needs are accepted:
// collections.OrderedDict, torch._utils._rebuild_tensor(_v2),
// torch._utils._rebuild_parameter(_with_state) and the typed storage classes
// torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage. Any
// other global is refused by name, before anything else happens.
//
// Torch-free on purpose, like safetensors.h: the fuzz target links it alone.
// Conversion to torch tensors lives in weights.h. Not supported, each refused
// with a message that says so: the legacy pre-1.6 format (not a zip), compressed
// entries, big-endian archives, TorchScript archives, quantized/sparse tensors,
// checkpoints that nest the state dict ({"state_dict": {...}}).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sensecf/llm/io/safetensors.h"

namespace sensecf::llm {

// One file of a ZIP archive, as its central directory and local header say.
struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;       // 0 = STORED; anything else is refused when read
  std::uint64_t data_offset = 0;  // file offset of the entry's bytes
  std::uint64_t size = 0;         // compressed size (== the size for STORED entries)
};

// Walks a ZIP archive held in `bytes` (the whole file): the end-of-central-
// directory record (and the ZIP64 locator and record when present), every
// central-directory entry (ZIP64 extra fields included) and its local header.
// Every entry must lie inside the file; names must be unique. Compressed
// entries are listed (method != 0) and refused only when read. `source` names
// the file in messages. Throws sensecf::Error, never crashes (fuzzed).
std::vector<ZipEntry> read_zip_entries(const std::uint8_t* bytes, std::size_t n_bytes,
                                       const std::string& source);

// The typed storage classes data.pkl may name as torch.<name>: FloatStorage
// (F32), HalfStorage (F16), BFloat16Storage (BF16), DoubleStorage (F64), and
// Long, Int, Short, Char, Byte, Bool for the integer and bool dtypes.
const char* torch_storage_name(Dtype dtype);  // nullptr when torch has no such storage
std::optional<Dtype> parse_torch_storage_name(std::string_view name);

// A storage as data.pkl declares it: the entry <prefix>/data/<key> holds
// numel × dtype_size(dtype) bytes.
struct TorchStorage {
  std::string key;
  Dtype dtype = Dtype::kF32;
  std::uint64_t numel = 0;
  std::uint64_t n_bytes() const { return numel * dtype_size(dtype); }
};

// One tensor of the state dict: a strided view of a storage (in elements).
struct TorchTensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;  // the storage's dtype
  std::vector<std::int64_t> shape, stride;
  std::int64_t storage_offset = 0;
  std::string storage_key;
  std::uint64_t numel() const;
  bool is_contiguous() const;  // row-major without gaps (from storage_offset on)
};

// What data.pkl holds: a flat dict of tensors. `tensors` in the pickle's order.
struct TorchStateDict {
  std::vector<TorchTensorInfo> tensors;
  std::map<std::string, TorchStorage> storages;                // by key
  const TorchTensorInfo* find(const std::string& name) const;  // nullptr when absent
};

// Runs the restricted unpickler over the bytes of a data.pkl. Checks that the
// object is a dict of tensors (string keys, no key twice) and that every tensor
// lies inside its storage's declared numel; not checked here: that the archive
// holds the storages (parse_torch_archive does). `source` names the file in
// messages. Throws sensecf::Error, never crashes (fuzzed).
TorchStateDict parse_state_dict_pickle(const std::uint8_t* bytes, std::size_t n_bytes,
                                       const std::string& source);

// A whole torch.save archive held in memory.
struct TorchArchive {
  std::string prefix;  // "archive" for archive/data.pkl
  TorchStateDict state;
  std::map<std::string, ZipEntry> storage_entries;  // key -> <prefix>/data/<key>
};

// The first bytes of the legacy (pre-1.6, non-zip) torch.save format: a pickled
// magic number. Exposed for tests.
bool is_legacy_torch_save(const std::uint8_t* bytes, std::size_t n_bytes);

// Reads the archive in `bytes` (the whole file): zip entries, byteorder,
// data.pkl through parse_state_dict_pickle, and each storage's entry, whose size
// must be exactly numel × dtype size. Throws sensecf::Error.
TorchArchive parse_torch_archive(const std::uint8_t* bytes, std::size_t n_bytes, const std::string& source);

// A torch.save archive mapped read-only (mmap, MAP_PRIVATE). Move-only.
class TorchBinFile {
 public:
  static TorchBinFile open(const std::string& path);
  TorchBinFile(TorchBinFile&& other) noexcept = default;
  TorchBinFile& operator=(TorchBinFile&& other) noexcept = default;

  const std::string& path() const { return path_; }
  const TorchArchive& archive() const { return archive_; }
  const std::vector<TorchTensorInfo>& tensors() const { return archive_.state.tensors; }
  const TorchTensorInfo& tensor(const std::string& name) const;  // throws naming the file when absent
  // All bytes of the storage `tensor` views (element 0 on, not from its offset).
  ByteSpan storage(const TorchTensorInfo& tensor) const;

 private:
  TorchBinFile() = default;
  std::string path_;
  TorchArchive archive_;
  MappedFile file_;
};

// Writes a state dict of contiguous tensors as torch.save (torch 1.13) would:
// a STORED zip with 64-byte aligned storages, one per tensor, and a protocol-2
// data.pkl of an OrderedDict of _rebuild_tensor_v2 calls; with `zip64`, ZIP64
// records are written even when the archive is small. For tests and benchmarks:
// it writes only what torch.load and this reader both accept.
void write_torch_bin(const std::string& path, const std::map<std::string, TensorData>& tensors,
                     bool zip64 = false);

}  // namespace sensecf::llm
