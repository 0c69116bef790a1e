// `sensecf info`: versions of this build, and under mpirun the rank layout and
// device binding of every rank (a quick check of a cluster allocation).
#include <spdlog/fmt/fmt.h>

#include <iostream>

#include "commands.h"
#include "sensecf/core/check.h"
#include "sensecf/core/provenance.h"
#include "sensecf/dist/device.h"
#include "sensecf/dist/mpi_env.h"

namespace sensecf::cli {

int cmd_info(const std::vector<std::string>& args) {
  LogOptions log;
  Options options("info", "Print versions, and for every MPI rank its host, local rank and device binding.");
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  dist::MpiEnv mpi(nullptr, nullptr);
  init_logging(log, mpi.rank(), mpi.size(), mpi.host());
  const auto binding = dist::choose_device(mpi.local_rank(), mpi.local_size());
  const std::string mine = fmt::format("rank {}/{} on {} (local {}/{}): {}", mpi.rank(), mpi.size(), mpi.host(),
                                       mpi.local_rank(), mpi.local_size(), binding.describe());
  // Gather the lines on rank 0 so the output is ordered.
  constexpr int kLen = 512;
  std::vector<char> line(kLen, 0), all(static_cast<std::size_t>(kLen) * static_cast<std::size_t>(mpi.size()));
  mine.copy(line.data(), kLen - 1);
  SENSECF_MPI_CHECK(MPI_Gather(line.data(), kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, 0, mpi.world()));
  if (mpi.rank() == 0) {
    std::cout << version_string() << "\n" << dist::nccl_version() << "\n";
    for (int r = 0; r < mpi.size(); ++r) std::cout << (all.data() + static_cast<std::size_t>(r) * kLen) << "\n";
  }
  return 0;
}

}  // namespace sensecf::cli
