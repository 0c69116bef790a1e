// Rng helpers and seed derivation.
#include <cstdint>
#include "sensecf/core/random.h"

namespace sensecf {

std::uint64_t Rng::below(std::uint64_t n) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x = engine_();
  while (x >= limit) x = engine_();
  return x % n;
}

std::uint64_t derive_seed(std::uint64_t base, std::string_view purpose) {
  // splitmix64 of (base xor FNV-1a(purpose))
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : purpose) h = (h ^ c) * 1099511628211ULL;
  std::uint64_t z = base ^ h;
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace sensecf
