// libFuzzer target for torch.save archives (src/llm/torch_bin.cpp,
// src/llm/torch_pickle.cpp): the restricted unpickler, with the input as a
// data.pkl, and the whole archive reader (ZIP, ZIP64, entries, byteorder,
// storages), with the input as a pytorch_model.bin.
//
// Both must either return a result that satisfies the invariants the loader
// relies on (re-checked here) or throw sensecf::Error; any other exception,
// crash, leak, timeout or sanitizer report is a bug. Self-referencing and
// deeply nested pickles are part of the corpus: values live in an arena, so
// neither recursion nor reference cycles exist to exploit.
//
//   fuzz/campaign.sh torch_bin 600     # a campaign: see fuzz/CMakeLists.txt
#include <cstdint>
#include <cstdlib>
#include <set>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/torch_bin.h"

namespace {

using sensecf::llm::TorchStateDict;

// Every tensor named once, on a declared storage, inside it.
void check_state(const TorchStateDict& state) {
  std::set<std::string> names;
  for (const auto& t : state.tensors) {
    if (!names.insert(t.name).second) std::abort();
    const auto it = state.storages.find(t.storage_key);
    if (it == state.storages.end() || it->second.dtype != t.dtype) std::abort();
    if (t.shape.size() != t.stride.size() || t.storage_offset < 0) std::abort();
    std::uint64_t last = static_cast<std::uint64_t>(t.storage_offset);
    bool empty = false;
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 0 || t.stride[d] < 0) std::abort();
      empty = empty || t.shape[d] == 0;
    }
    if (empty) continue;
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      last += static_cast<std::uint64_t>(t.shape[d] - 1) * static_cast<std::uint64_t>(t.stride[d]);
    }
    if (last >= it->second.numel) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    check_state(sensecf::llm::parse_state_dict_pickle(data, size, "fuzz.pkl"));
  } catch (const sensecf::Error&) {
  }
  try {
    const auto archive = sensecf::llm::parse_torch_archive(data, size, "fuzz.bin");
    check_state(archive.state);
    for (const auto& [key, storage] : archive.state.storages) {
      const auto& entry = archive.storage_entries.at(key);
      if (entry.method != 0 || entry.size != storage.n_bytes()) std::abort();
      if (entry.data_offset > size || entry.size > size - entry.data_offset) std::abort();
    }
  } catch (const sensecf::Error&) {
  }
  return 0;
}
