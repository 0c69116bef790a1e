// Which vector instructions the hand-vectorised kernels use (NICE's float
// distance pass in cf/heom.cpp, the NN's small-batch layers in clf/nn.cpp).
//
// Each kernel is compiled for the x86-64 baseline (SSE2) and, with GCC on
// x86-64, also for AVX2 and AVX-512; the widest one the CPU runs is used. Every
// level gives the same results bit for bit: the kernels do element-wise
// arithmetic only, in the same order, and never fuse a * b + c (no FMA), so a
// level is a speed choice, never a numerical one. SENSECF_SIMD=baseline|avx2|
// avx512 caps the level (to compare, or to rule the kernels out when
// debugging); tests cap it to run every level on one machine.
#pragma once

namespace sensecf {

enum class SimdLevel { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

// The level in force: the CPU's widest, capped by SENSECF_SIMD and set_simd_level.
SimdLevel simd_level();
// Caps the level at `cap` (never above what this CPU and build support) and
// returns the level now in force. Process-wide; for tests and benchmarks.
SimdLevel set_simd_level(SimdLevel cap);
const char* simd_level_name(SimdLevel level);

}  // namespace sensecf

// Function attributes for the kernels' variants (empty where the build has none).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SENSECF_HAVE_SIMD_VARIANTS 1
#define SENSECF_TARGET_AVX2 __attribute__((target("avx2")))
// AVX-512 has FMA: fp-contract=off keeps a * b + c two roundings, as at the other levels.
#define SENSECF_TARGET_AVX512 __attribute__((target("avx512f,avx512vl"), optimize("fp-contract=off")))
#else
#define SENSECF_HAVE_SIMD_VARIANTS 0
#define SENSECF_TARGET_AVX2
#define SENSECF_TARGET_AVX512
#endif
