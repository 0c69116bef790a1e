// The MPI environment of one process: world rank/size, node-local rank/size
// (MPI_Comm_split_type SHARED) and host names. Initialises MPI if nobody did
// and finalises what it initialised. No communication patterns here (the sweep
// owns its protocol); no LibTorch.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

namespace sensecf::dist {

class MpiEnv {
 public:
  MpiEnv(int* argc, char*** argv);
  ~MpiEnv();
  MpiEnv(const MpiEnv&) = delete;
  MpiEnv& operator=(const MpiEnv&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  const std::string& host() const { return host_; }
  MPI_Comm world() const { return MPI_COMM_WORLD; }
  MPI_Comm node() const { return node_; }
  // Every rank's host name, indexed by rank (collective).
  std::vector<std::string> all_hosts() const;
  // Ends every rank (for errors seen by one rank only, so nothing hangs).
  [[noreturn]] void abort(int code) const;

 private:
  bool owns_mpi_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  MPI_Comm node_ = MPI_COMM_NULL;
  std::string host_;
};

// The MPI library's own version ("Open MPI v4.1.4"), for --version and
// provenance; callable before MPI_Init. Defined in mpi_check.cpp.
std::string mpi_library_version();

}  // namespace sensecf::dist
