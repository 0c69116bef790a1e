// Device binding: CUDA device choice per local rank and CPU thread budget.
#include "sensecf/dist/device.h"

#include <sched.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <thread>

#include "sensecf/core/check.h"

#ifdef SENSECF_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef SENSECF_WITH_NCCL
#include <nccl.h>
#endif

namespace sensecf::dist {

std::string DeviceBinding::describe() const {
  if (device < 0) return fmt::format("CPU, {} threads ({} CUDA devices visible)", cpu_threads, n_visible);
  return fmt::format("CUDA device {} of {} visible, {} CPU threads", device, n_visible, cpu_threads);
}

int cuda_device_count() {
#ifdef SENSECF_WITH_CUDA
  int n = 0;
  // No driver or no device is not an error here: the rank runs on the CPU.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

std::string nccl_version() {
#ifdef SENSECF_WITH_NCCL
  int v = 0;
  SENSECF_NCCL_CHECK(ncclGetVersion(&v));
  return fmt::format("NCCL {}.{}.{}", v / 10000, (v / 100) % 100, v % 100);
#else
  return "no NCCL in this build";
#endif
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

DeviceBinding choose_device(int local_rank, int local_size) {
  DeviceBinding b;
  b.n_visible = cuda_device_count();
  if (b.n_visible == 1) {
    b.device = 0;
  } else if (b.n_visible > 1) {
    b.device = local_rank % b.n_visible;
  }
  b.cpu_threads = std::max(1, available_cores() / std::max(1, local_size));
  return b;
}

}  // namespace sensecf::dist
