// MpiEnv: MPI start-up, node-local ranks and host names.
#include "sensecf/dist/mpi_env.h"

#include <exception>

#include "sensecf/core/check.h"
#include "sensecf/core/log.h"

namespace sensecf::dist {

MpiEnv::MpiEnv(int* argc, char*** argv) {
  int initialized = 0;
  SENSECF_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    SENSECF_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    owns_mpi_ = true;
  }
  // Errors come back as codes so SENSECF_MPI_CHECK can report them with context.
  SENSECF_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  SENSECF_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  SENSECF_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  SENSECF_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_));
  SENSECF_MPI_CHECK(MPI_Comm_rank(node_, &local_rank_));
  SENSECF_MPI_CHECK(MPI_Comm_size(node_, &local_size_));
  host_ = host_name();
}

MpiEnv::~MpiEnv() {
  // While an exception unwinds, leave MPI up: main() decides between a clean
  // finalize (an error every rank hit) and MPI_Abort (one rank's error).
  if (std::uncaught_exceptions() > 0) return;
  if (node_ != MPI_COMM_NULL) MPI_Comm_free(&node_);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_mpi_ && !finalized) MPI_Finalize();
}

std::vector<std::string> MpiEnv::all_hosts() const {
  constexpr int kLen = 256;
  std::vector<char> mine(kLen, 0);
  host_.copy(mine.data(), kLen - 1);
  std::vector<char> all(static_cast<std::size_t>(kLen) * static_cast<std::size_t>(size_));
  SENSECF_MPI_CHECK(MPI_Allgather(mine.data(), kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, MPI_COMM_WORLD));
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r) out.emplace_back(all.data() + static_cast<std::size_t>(r) * kLen);
  return out;
}

void MpiEnv::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // not reached
}

}  // namespace sensecf::dist
