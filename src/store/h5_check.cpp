// The failure path of SENSECF_H5_CHECK (core/check.h): the innermost message of
// HDF5's error stack. Here rather than in core, so that only modules that use
// HDF5 link it.
#include <hdf5.h>
#include <spdlog/fmt/fmt.h>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"

namespace sensecf::detail {
namespace {
herr_t collect_h5_error(unsigned n, const H5E_error2_t* err, void* client) {
  auto* out = static_cast<std::string*>(client);
  if (n == 0 && err->desc) *out = err->desc;  // innermost message is the most specific
  return 0;
}
}  // namespace

void h5_check_failed(const char* expr, const char* file, int line) {
  std::string detail_text = "no HDF5 error message";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_h5_error, &detail_text);
  H5Eclear2(H5E_DEFAULT);
  throw Error(fmt::format("HDF5 call failed at {}:{}: {} -> {}", file, line, expr, detail_text));
}

}  // namespace sensecf::detail
