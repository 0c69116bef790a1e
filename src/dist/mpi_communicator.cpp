// Communicator over MPI (see dist/mpi_communicator.h).
#include "sensecf/dist/mpi_communicator.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <climits>

#include "sensecf/core/error.h"
#include "sensecf/dist/mpi_env.h"

namespace sensecf::dist {
namespace {

// MPI counts are int: large buffers go in chunks.
template <class T>
void all_reduce_chunks(T* data, std::size_t n, MPI_Datatype type, MPI_Comm comm) {
  constexpr std::size_t kChunk = static_cast<std::size_t>(INT_MAX / 2);
  for (std::size_t start = 0; start < n; start += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - start));
    const int rc = MPI_Allreduce(MPI_IN_PLACE, data + start, count, type, MPI_SUM, comm);
    if (rc != MPI_SUCCESS) throw Error(fmt::format("MPI_Allreduce of {} values failed (code {})", count, rc));
  }
}

// Owns the MPI environment for as long as the communicator lives.
class WorldCommunicator final : public Communicator {
 public:
  WorldCommunicator() : env_(nullptr, nullptr), comm_(MPI_COMM_WORLD) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void all_reduce_sum(float* data, std::size_t n) override { comm_.all_reduce_sum(data, n); }
  void all_reduce_sum(double* data, std::size_t n) override { comm_.all_reduce_sum(data, n); }
  bool any(bool flag) override { return comm_.any(flag); }
  void broadcast(void* data, std::size_t bytes, int root) override { comm_.broadcast(data, bytes, root); }
  std::string describe() const override { return comm_.describe(); }

 private:
  MpiEnv env_;
  MpiCommunicator comm_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

void MpiCommunicator::all_reduce_sum(float* data, std::size_t n) { all_reduce_chunks(data, n, MPI_FLOAT, comm_); }

void MpiCommunicator::all_reduce_sum(double* data, std::size_t n) { all_reduce_chunks(data, n, MPI_DOUBLE, comm_); }

bool MpiCommunicator::any(bool flag) {
  int local = flag ? 1 : 0, global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, comm_);
  return global != 0;
}

void MpiCommunicator::broadcast(void* data, std::size_t bytes, int root) {
  constexpr std::size_t kChunk = static_cast<std::size_t>(INT_MAX / 2);
  auto* p = static_cast<unsigned char*>(data);
  for (std::size_t start = 0; start < bytes; start += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, bytes - start));
    const int rc = MPI_Bcast(p + start, count, MPI_BYTE, root, comm_);
    if (rc != MPI_SUCCESS) throw Error(fmt::format("MPI_Bcast of {} bytes from rank {} failed (code {})", count, root, rc));
  }
}

std::string MpiCommunicator::describe() const { return fmt::format("MPI, {} ranks", size_); }

std::unique_ptr<Communicator> world_communicator() { return std::make_unique<WorldCommunicator>(); }

}  // namespace sensecf::dist
