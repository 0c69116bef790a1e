// Helpers shared by the LLM tests (tests/unit/test_llm_*.cpp, tests/gpu/):
// deterministic token ids, the tiny random checkpoints (written once per test
// process), and the skip of a test that needs a CUDA device.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "sensecf/llm/model/tiny.h"
#include "test_util.h"

namespace sensecf::test {

// n token ids below vocab, different for each salt.
inline std::vector<int> some_ids(int n, int vocab, int salt) {
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) ids.push_back((i * 37 + salt * 11 + 5) % vocab);
  return ids;
}

// The directory of the tiny random `family` checkpoint (llama | mistral) of
// seed 11, written on first use into a directory removed when the process ends.
inline std::string tiny_checkpoint(const std::string& family) {
  static const TempDir dir;
  const std::string path = dir.file(family);
  if (!std::filesystem::exists(path + "/config.json")) llm::write_tiny_checkpoint(path, family, 11);
  return path;
}

}  // namespace sensecf::test

// Skips the current test, saying so, where no CUDA device is visible. CTest
// reports a gpu test whose output has this message as skipped (tests/CMakeLists.txt).
#define SENSECF_REQUIRE_CUDA()                                                                   \
  do {                                                                                           \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible: gpu test skipped"; \
  } while (0)
