// The failure path of SENSECF_MPI_CHECK (core/check.h) and the MPI library's
// version string: here rather than in core, so that only modules that use MPI
// link it.
#include <mpi.h>
#include <spdlog/fmt/fmt.h>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/dist/mpi_env.h"

namespace sensecf {
namespace detail {

void mpi_check_failed(int code, const char* expr, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) fmt::format_to_n(text, sizeof text - 1, "code {}", code);
  throw Error(fmt::format("MPI call failed at {}:{}: {} -> {}", file, line, expr, text),
              "check that every rank reached the same call; run with --log.all-ranks");
}

}  // namespace detail

namespace dist {

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(text, &len);  // allowed before MPI_Init
  std::string version(text, static_cast<std::size_t>(len));
  if (auto comma = version.find(','); comma != std::string::npos) version.resize(comma);
  return version;
}

}  // namespace dist
}  // namespace sensecf
