// Which accelerator (if any) and how many CPU threads a rank uses.
//
// With one visible CUDA device per task (Slurm --gpus-per-task) every rank uses
// device 0; otherwise local_rank % device_count. Without a GPU (or in a CPU
// build) each rank gets cores / local ranks threads. CUDA and NCCL code is
// compiled only when the build found them (SENSECF_WITH_CUDA / _NCCL).
#pragma once

#include <string>

namespace sensecf::dist {

struct DeviceBinding {
  int device = -1;        // CUDA device index, -1 = CPU
  int n_visible = 0;      // CUDA devices visible to this process
  int cpu_threads = 1;    // threads for CPU work on this rank
  std::string describe() const;
};

// Number of CUDA devices visible (0 in a CPU build or without a driver).
int cuda_device_count();
// "NCCL 2.x.y" or "no NCCL in this build".
std::string nccl_version();
// hardware threads available to this process (affinity mask aware).
int available_cores();

DeviceBinding choose_device(int local_rank, int local_size);

}  // namespace sensecf::dist
