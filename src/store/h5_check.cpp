// The failure path of SENSECF_H5_CHECK (core/check.h): HDF5's error stack as
// "what failed: why" (the outermost and innermost messages). Here rather than
// in core, so that only modules that use HDF5 link it.
#include <hdf5.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"

namespace sensecf::detail {
namespace {
herr_t collect_h5_error(unsigned, const H5E_error2_t* err, void* client) {
  auto* out = static_cast<std::vector<std::string>*>(client);
  if (err->desc && *err->desc) out->push_back(err->desc);
  return 0;
}
}  // namespace

void h5_check_failed(const char* expr, const char* file, int line) {
  // Walked from the API call down to where it failed: the last message is the
  // cause ("data error detected by Fletcher32 checksum"), the first the symptom.
  std::vector<std::string> stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_h5_error, &stack);
  H5Eclear2(H5E_DEFAULT);
  std::string detail_text = stack.empty() ? "no HDF5 error message" : stack.back();
  if (stack.size() > 1 && stack.front() != stack.back()) detail_text = stack.front() + ": " + stack.back();
  // The source location is for developers (debug log); users get HDF5's own words.
  spdlog::debug("HDF5 call failed at {}:{}: {}", file, line, expr);
  throw Error("HDF5 error: " + detail_text,
              "the file may be damaged, truncated, written by another program or on a full disk; "
              "`h5dump -H FILE` shows its structure");
}

}  // namespace sensecf::detail
