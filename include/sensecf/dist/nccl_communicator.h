// sensecf::Communicator with NCCL for buffers in CUDA device memory, for
// data-parallel fine-tuning on GPUs (the trainer's LoRA gradients).
//
// Bootstrap over the host communicator (MPI): rank 0 makes the ncclUniqueId,
// the host communicator broadcasts it, and every rank joins the NCCL
// communicator with ncclCommInitRank on its CUDA device. Then
//   all_reduce_sum_device  ncclAllReduce in place on the default CUDA stream
//                          (LibTorch's, unless a caller changed it), waited for;
//   everything else        (host sums, any(), broadcast) over the host
//                          communicator, which this one owns.
// Every call is collective over the same ranks as the host communicator's.
//
// Compiled where CMake found CUDA and NCCL (SENSECF_WITH_NCCL); in other builds
// make_nccl_communicator throws saying so, and callers keep the host path.
#pragma once

#include <memory>
#include <string>

#include "sensecf/core/communicator.h"

namespace sensecf::dist {

// Whether this build has NCCL.
bool nccl_built();

// The NCCL communicator of the host communicator's ranks, each on its
// `cuda_device`. Collective. Throws sensecf::Error naming the rank and the
// cause when NCCL or the device is missing or initialisation fails.
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host, int cuda_device);

// What data-parallel training on `device` ("cpu", "cuda", "cuda:N") uses.
// With more than one rank on CUDA: "cuda" becomes this rank's own GPU,
// cuda:(local_rank % visible devices) ("cuda:N" is kept as given), and the
// communicator is NCCL's when the build has NCCL, else `host` as it is (the
// gradients go through host memory; a warning says so). Otherwise `host` and
// `device` unchanged. Collective.
struct TrainingComm {
  std::unique_ptr<Communicator> comm;
  std::string device;
};
TrainingComm training_communicator(std::unique_ptr<Communicator> host, const std::string& device,
                                   int local_rank);

}  // namespace sensecf::dist
