// Peak memory for benchmarks and the trainer's progress line. Device: as
// torch.cuda.max_memory_allocated() reports it, the most bytes the CUDA
// caching allocator had handed out since the last reset; a CPU device (or a
// build without LibTorch's CUDA paths) has no figure. Host: the process's peak
// resident set (getrusage).
#pragma once

#include <c10/core/Device.h>

#include <optional>

namespace sensecf::llm {

// Starts a new peak window on a CUDA device; nothing on the CPU.
void reset_peak_device_memory(c10::Device device);

// Bytes: the peak since the last reset, or nullopt where there is no figure.
std::optional<double> peak_device_memory(c10::Device device);

// Bytes: this process's peak resident set size so far.
double peak_host_memory();

}  // namespace sensecf::llm
