// SourceLocation formatting and the failure paths of the C-API check macros.
#include "sensecf/core/error.h"

#include <hdf5.h>
#include <mpi.h>
#include <spdlog/fmt/fmt.h>

#include "sensecf/core/check.h"

namespace sensecf {

std::string SourceLocation::str() const {
  std::string s = path;
  if (line > 0) s += ":" + std::to_string(line);
  if (column > 0) s += ":" + std::to_string(column);
  return s;
}

namespace detail {

void mpi_check_failed(int code, const char* expr, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) fmt::format_to_n(text, sizeof text - 1, "code {}", code);
  throw Error(fmt::format("MPI call failed at {}:{}: {} -> {}", file, line, expr, text),
              "check that every rank reached the same call; run with --log.all-ranks");
}

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

void cuda_check_failed(int code, const char* what, const char* expr, const char* file, int line) {
  throw Error(fmt::format("CUDA call failed at {}:{}: {} -> error {} ({})", file, line, expr, code, what),
              "is the device visible (CUDA_VISIBLE_DEVICES) and is memory left?");
}

void nccl_check_failed(int code, const char* what, const char* expr, const char* file, int line) {
  throw Error(fmt::format("NCCL call failed at {}:{}: {} -> error {} ({})", file, line, expr, code, what),
              "set NCCL_DEBUG=INFO for details");
}

}  // namespace detail
}  // namespace sensecf
