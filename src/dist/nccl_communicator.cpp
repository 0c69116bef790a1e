// NCCL communicator (see dist/nccl_communicator.h).
#include "sensecf/dist/nccl_communicator.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/dist/device.h"

#ifdef SENSECF_WITH_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

namespace sensecf::dist {
namespace {

// "cuda:N" -> N, "cuda" -> 0, anything else -> -1.
int cuda_index(const std::string& device) {
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) != 0) return -1;
  try {
    return std::stoi(device.substr(5));
  } catch (const std::exception&) {
    return -1;
  }
}

#ifdef SENSECF_WITH_NCCL
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::unique_ptr<Communicator> host, int device) : host_(std::move(host)), device_(device) {
    const int visible = cuda_device_count();
    if (device < 0 || device >= visible) {
      throw Error(
          fmt::format("rank {}: NCCL needs CUDA device {}, but {} CUDA devices are visible", host_->rank(),
                      device, visible),
          "run data-parallel GPU training on ranks that each see a GPU (check CUDA_VISIBLE_DEVICES and "
          "the job's GPUs per task), or train on the CPU");
    }
    SENSECF_CUDA_CHECK(cudaSetDevice(device));
    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (host_->rank() == 0) SENSECF_NCCL_CHECK(ncclGetUniqueId(&id));
    host_->broadcast(&id, sizeof id, 0);
    SENSECF_NCCL_CHECK(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()));
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  void all_reduce_sum(float* data, std::size_t n) override { host_->all_reduce_sum(data, n); }
  void all_reduce_sum(double* data, std::size_t n) override { host_->all_reduce_sum(data, n); }
  bool any(bool flag) override { return host_->any(flag); }
  void broadcast(void* data, std::size_t bytes, int root) override { host_->broadcast(data, bytes, root); }
  bool device_buffers() const override { return true; }
  void all_reduce_sum_device(float* data, std::size_t n) override {
    SENSECF_NCCL_CHECK(ncclAllReduce(data, data, n, ncclFloat32, ncclSum, comm_, nullptr));
    SENSECF_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }
  std::string describe() const override {
    return fmt::format("NCCL on CUDA device {}, {} ranks (host side: {})", device_, size(),
                       host_->describe());
  }

 private:
  std::unique_ptr<Communicator> host_;
  int device_;
  ncclComm_t comm_ = nullptr;
};
#endif

}  // namespace

bool nccl_built() {
#ifdef SENSECF_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host, int cuda_device) {
#ifdef SENSECF_WITH_NCCL
  return std::make_unique<NcclCommunicator>(std::move(host), cuda_device);
#else
  (void)cuda_device;
  throw Error(fmt::format("rank {}: this build has no NCCL", host->rank()),
              "configure on a machine with the CUDA toolkit and NCCL (SENSECF_WITH_CUDA=ON; docs/gpu.md)");
#endif
}

TrainingComm training_communicator(std::unique_ptr<Communicator> host, const std::string& device,
                                   int local_rank) {
  int index = cuda_index(device);
  if (host->size() < 2 || index < 0) return {std::move(host), device};
  std::string bound = device;
  if (device == "cuda") {
    // The sweep runner's rule (choose_device); without a GPU, device 0, which
    // the NCCL start then reports as missing.
    index = std::max(0, choose_device(local_rank, 1).device);
    bound = fmt::format("cuda:{}", index);
  }
  if (!nccl_built()) {
    if (host->rank() == 0) {
      spdlog::warn(
          "data parallel on {}: this build has no NCCL, the gradients are summed over {} through host memory",
          device, host->describe());
    }
    return {std::move(host), bound};
  }
  auto comm = make_nccl_communicator(std::move(host), index);
  if (comm->rank() == 0) spdlog::info("data parallel: {}", comm->describe());
  return {std::move(comm), bound};
}

}  // namespace sensecf::dist
