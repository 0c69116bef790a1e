#include "sensecf/core/simd.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

namespace sensecf {
namespace {

SimdLevel cpu_level() {
#if SENSECF_HAVE_SIMD_VARIANTS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2")) return SimdLevel::kAvx2;
#endif
  return SimdLevel::kBaseline;
}

SimdLevel initial_level() {
  SimdLevel level = cpu_level();
  if (const char* env = std::getenv("SENSECF_SIMD")) {
    const std::string cap = env;
    SimdLevel wanted = level;
    if (cap == "baseline")
      wanted = SimdLevel::kBaseline;
    else if (cap == "avx2")
      wanted = SimdLevel::kAvx2;
    else if (cap == "avx512")
      wanted = SimdLevel::kAvx512;
    else
      spdlog::warn("SENSECF_SIMD='{}' is not one of baseline, avx2, avx512: ignored", cap);
    level = std::min(level, wanted);
  }
  return level;
}

std::atomic<int>& current() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

}  // namespace

SimdLevel simd_level() { return static_cast<SimdLevel>(current().load(std::memory_order_relaxed)); }

SimdLevel set_simd_level(SimdLevel cap) {
  const SimdLevel level = std::min(cpu_level(), cap);
  current().store(static_cast<int>(level));
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return "avx512";
    case SimdLevel::kAvx2:
      return "avx2";
    default:
      return "baseline";
  }
}

}  // namespace sensecf
