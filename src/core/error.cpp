// SourceLocation formatting and the failure paths of the CUDA and NCCL check
// macros. The MPI and HDF5 ones live with the modules that link those libraries
// (dist/mpi_check.cpp, store/h5_check.cpp), so core links neither.
#include "sensecf/core/error.h"

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
