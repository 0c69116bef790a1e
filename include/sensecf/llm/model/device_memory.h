// Peak device memory, as torch.cuda.max_memory_allocated() reports it: the
// most bytes the CUDA caching allocator had handed out since the last reset.
// For `lm bench-train` and the trainer's progress line; a CPU device (or a
// build without LibTorch's CUDA paths) has no figure.
#pragma once

#include <c10/core/Device.h>

#include <optional>

namespace sensecf::llm {

// Starts a new peak window on a CUDA device; nothing on the CPU.
void reset_peak_device_memory(c10::Device device);

// Bytes: the peak since the last reset, or nullopt where there is no figure.
std::optional<double> peak_device_memory(c10::Device device);

}  // namespace sensecf::llm
