// sensecf::Communicator (core/communicator.h) over MPI: MPI_Allreduce on host
// buffers of one communicator (the world, or a sweep gang's).
#pragma once

#include <mpi.h>

#include <memory>

#include "sensecf/core/communicator.h"

namespace sensecf::dist {

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm);
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(float* data, std::size_t n) override;
  void all_reduce_sum(double* data, std::size_t n) override;
  bool any(bool flag) override;
  void broadcast(void* data, std::size_t bytes, int root) override;
  std::string describe() const override;
  MPI_Comm comm() const { return comm_; }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

// The job's world: initialises MPI (finalised when the returned object goes)
// and communicates over MPI_COMM_WORLD.
std::unique_ptr<Communicator> world_communicator();

}  // namespace sensecf::dist
