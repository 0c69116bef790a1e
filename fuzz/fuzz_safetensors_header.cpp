// libFuzzer target for the safetensors header parser (src/llm/safetensors.cpp).
//
// The input is a whole "file": 8-byte length, JSON header, data buffer. The
// parser must either return a validated header or throw sensecf::Error; any
// other exception, crash, leak or sanitizer report is a bug. For a header that
// parses, the invariants the mmap reader relies on are re-checked here.
//
//   fuzz/campaign.sh safetensors_header 600     # a campaign: see fuzz/CMakeLists.txt
#include <cstdint>
#include <cstdlib>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto header = sensecf::llm::parse_header(data, size, size, "fuzz-input");
    std::uint64_t position = 0;
    for (const auto& t : header.tensors) {
      // Sorted, contiguous, inside the buffer, span == numel * dtype size.
      if (t.begin != position || t.end < t.begin || t.end > header.buffer_size) std::abort();
      if (t.n_bytes() != t.numel() * sensecf::llm::dtype_size(t.dtype)) std::abort();
      position = t.end;
    }
    if (position != header.buffer_size || header.data_start + header.buffer_size != size) std::abort();
  } catch (const sensecf::Error&) {
  }
  return 0;
}
