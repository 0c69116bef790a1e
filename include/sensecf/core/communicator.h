// How the ranks of one data-parallel computation talk: sum buffers across
// ranks and agree on a flag. The fine-tuning trainer (llm/train) sums its LoRA
// gradients through this interface; dist/mpi_communicator.h implements it with
// MPI, and SingleProcess is the one-rank case (nothing to exchange);
// dist/nccl_communicator.h adds NCCL for buffers in CUDA device memory
// (device_buffers()), bootstrapped over MPI.
//
// Every call is collective: all ranks make the same calls in the same order.
#pragma once

#include <cstddef>
#include <string>

namespace sensecf {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Sums n host values across ranks in place: every rank ends with the sums.
  virtual void all_reduce_sum(float* data, std::size_t n) = 0;
  virtual void all_reduce_sum(double* data, std::size_t n) = 0;
  // True on every rank when any rank passes true.
  virtual bool any(bool flag) = 0;
  // Copies `bytes` bytes from rank `root`'s `data` into every rank's `data`.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  // Whether all_reduce_sum_device works: n floats in CUDA device memory
  // summed in place across ranks without a trip through host memory (NCCL).
  virtual bool device_buffers() const { return false; }
  // Throws sensecf::Error unless device_buffers().
  virtual void all_reduce_sum_device(float* data, std::size_t n);
  // "MPI, 4 ranks", for logs.
  virtual std::string describe() const = 0;
};

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, std::size_t) override {}
  void all_reduce_sum(double*, std::size_t) override {}
  bool any(bool flag) override { return flag; }
  void broadcast(void*, std::size_t, int) override {}
  std::string describe() const override { return "one process"; }
};

}  // namespace sensecf
