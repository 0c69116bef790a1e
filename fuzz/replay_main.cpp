// main() for the replay builds of the fuzz targets (fuzz/CMakeLists.txt): runs
// LLVMFuzzerTestOneInput once on every file of the corpus folders given as
// arguments, as libFuzzer's `-runs=0` would, without libFuzzer (so any
// compiler builds it). A folder that is missing or empty fails the run: a
// corpus that silently vanished would make the test pass without testing.
// Crashes and invariant failures abort the process; an exception other than
// sensecf::Error escaping the target ends it through std::terminate.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
    return 2;
  }
  std::size_t total = 0;
  for (int a = 1; a < argc; ++a) {
    const fs::path dir = argv[a];
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      std::fprintf(stderr, "%s: corpus folder '%s' is missing\n", argv[0], argv[a]);
      return 1;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());  // the same order on every run
    if (files.empty()) {
      std::fprintf(stderr, "%s: corpus folder '%s' is empty\n", argv[0], argv[a]);
      return 1;
    }
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.eof() && in.fail()) {
        std::fprintf(stderr, "%s: cannot read '%s'\n", argv[0], file.c_str());
        return 1;
      }
      // A copy of exactly `size` bytes, so that over-reads show under ASan.
      std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
      LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
    }
    std::printf("%s: replayed %zu inputs of %s\n", argv[0], files.size(), argv[a]);
    total += files.size();
  }
  std::printf("%s: replayed %zu inputs, no failure\n", argv[0], total);
  return 0;
}
