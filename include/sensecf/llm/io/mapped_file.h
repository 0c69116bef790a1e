// A whole file mapped read-only (mmap, MAP_PRIVATE) and unmapped when the
// object goes: what SafetensorsFile and TorchBinFile read their tensors from.
// Move-only. ByteSpan: a range of its bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sensecf::llm {

// A byte range inside a mapped file; valid while the file is open.
struct ByteSpan {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

class MappedFile {
 public:
  // Throws sensecf::Error naming `path` when it cannot be opened, is not a
  // regular file or cannot be mapped. An empty file gives size() 0.
  static MappedFile open(const std::string& path);
  // "what path: strerror(errno)", for errors of system calls on `path`.
  static std::string system_error(const std::string& what, const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::uint8_t* data() const { return static_cast<const std::uint8_t*>(map_); }
  std::size_t size() const { return size_; }

 private:
  void* map_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace sensecf::llm
