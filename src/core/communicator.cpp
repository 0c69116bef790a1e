// The default of Communicator's device-buffer path (see core/communicator.h).
#include "sensecf/core/communicator.h"

#include "sensecf/core/error.h"

namespace sensecf {

void Communicator::all_reduce_sum_device(float* /*data*/, std::size_t /*n*/) {
  throw Error(describe() + " cannot sum buffers in device memory",
              "copy them to the host and use all_reduce_sum, or use the NCCL communicator "
              "(dist/nccl_communicator.h)");
}

}  // namespace sensecf
