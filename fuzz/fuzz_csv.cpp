// libFuzzer target for the CSV data reader (src/data/csv.cpp).
//
// The input is a whole data file. It is written to a per-process temporary
// file and read with read_csv() under three settings: the defaults as the CLI
// leaves them (the synthetic cohort's columns, inferred), the label set to the
// file's last header column with nothing else named, and that label with
// inferred lists and --missing drop. Every line also goes through
// split_csv_line(). Each call must either return a Dataset whose invariants
// hold (re-checked here) or throw sensecf::Error; any other exception, crash,
// leak, hang or sanitizer report is a bug.
//
//   fuzz/campaign.sh csv 600     # a campaign: see fuzz/CMakeLists.txt
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "sensecf/core/error.h"
#include "sensecf/data/csv.h"
#include "temp_file.h"

namespace {

using sensecf::fuzz::temp_file;

using sensecf::data::Dataset;
using sensecf::data::DataOptions;

void check_dataset(const Dataset& data, const DataOptions& options) {
  const std::size_t n = data.size(), d = data.schema.size();
  if (n == 0 || d == 0) std::abort();
  if (data.x.n_rows != n || data.x.n_cols != d || data.x.values.size() != n * d) std::abort();
  if (data.group.size() != n) std::abort();
  std::size_t n_pos = 0;
  for (int y : data.y) {
    if (y != 0 && y != 1) std::abort();
    n_pos += static_cast<std::size_t>(y);
  }
  if (n_pos == 0 || n_pos == n) std::abort();  // both classes
  std::set<std::string> names;
  for (std::size_t j = 0; j < d; ++j) {
    const auto& f = data.schema.features[j];
    if (f.name.empty() || !names.insert(f.name).second) std::abort();
    if (f.name == options.label || (!data.schema.group.empty() && f.name == data.schema.group)) std::abort();
    bool varies = false;
    for (std::size_t r = 0; r < n; ++r) {
      const double v = data.x.at(r, j);
      if (!std::isfinite(v)) std::abort();
      varies = varies || v != data.x.at(0, j);
      if (f.is_categorical()) {
        if (v != std::floor(v) || v < 0 || v >= static_cast<double>(f.categories.size())) std::abort();
      } else if (v < f.lower || v > f.upper) {
        std::abort();
      }
    }
    if (!varies) std::abort();  // constant columns are refused
    if (f.is_categorical()) {
      if (std::set<std::string>(f.categories.begin(), f.categories.end()).size() != f.categories.size()) std::abort();
      for (int a : f.allowed)
        if (a < 0 || static_cast<std::size_t>(a) >= f.categories.size()) std::abort();
    }
  }
}

void read(const DataOptions& options) {
  try {
    check_dataset(sensecf::data::read_csv(options), options);
  } catch (const sensecf::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string& path = [] {
    spdlog::set_level(spdlog::level::off);
    return temp_file("csv");
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) std::abort();
  }

  // split_csv_line on every line: columns start at 1 and increase.
  std::string first_line;
  std::size_t begin = 0;
  for (long line_no = 1; begin <= text.size(); ++line_no) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    if (line_no == 1) first_line = line;
    try {
      const auto cells = sensecf::data::split_csv_line(line, "fuzz.csv", line_no);
      if (cells.empty() || cells[0].column != 1) std::abort();
      for (std::size_t c = 1; c < cells.size(); ++c) {
        if (cells[c].column <= cells[c - 1].column || cells[c].column > static_cast<long>(line.size()) + 1) std::abort();
      }
    } catch (const sensecf::Error&) {
    }
    begin = end + 1;
  }

  DataOptions defaults;  // as the CLI leaves them
  defaults.path = path;
  defaults.infer_categorical = defaults.infer_immutable = defaults.infer_group = true;
  read(defaults);

  std::string last_column;
  try {
    if (first_line.rfind("\xEF\xBB\xBF", 0) == 0) first_line.erase(0, 3);
    const auto header = sensecf::data::split_csv_line(first_line, path, 1);
    last_column = header.back().text;
  } catch (const sensecf::Error&) {
  }
  if (!last_column.empty()) {
    DataOptions named;  // --label LAST --group "" --categorical "" --immutable ""
    named.path = path;
    named.label = last_column;
    named.group.clear();
    named.categorical.clear();
    named.immutable.clear();
    read(named);

    DataOptions inferred = defaults;  // --label LAST --missing drop
    inferred.label = last_column;
    inferred.missing = "drop";
    read(inferred);
  }
  return 0;
}
