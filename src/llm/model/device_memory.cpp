// Peak device and host memory (see model/device_memory.h).
#include "sensecf/llm/model/device_memory.h"

#include <sys/resource.h>

#ifdef SENSECF_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace sensecf::llm {

void reset_peak_device_memory(c10::Device device) {
#ifdef SENSECF_TORCH_CUDA
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#else
  (void)device;
#endif
}

std::optional<double> peak_device_memory(c10::Device device) {
#ifdef SENSECF_TORCH_CUDA
  if (device.is_cuda()) {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    return static_cast<double>(stats.allocated_bytes[0].peak);  // [0]: StatType::AGGREGATE, every pool
  }
#else
  (void)device;
#endif
  return std::nullopt;
}

double peak_host_memory() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;  // KiB on Linux
}

}  // namespace sensecf::llm
