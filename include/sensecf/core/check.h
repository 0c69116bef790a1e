// Check macros for every C API call the project makes (MPI, HDF5, CUDA, NCCL).
//
// A failing call throws sensecf::Error naming the call, the library's own error
// text, and the source file and line. The headers of those libraries are not
// included here: a macro only needs them where it is used.
//
//   SENSECF_MPI_CHECK(MPI_Send(...));
//   hid_t f = SENSECF_H5_CHECK(H5Fcreate(...));   // HDF5 returns the handle or < 0
//   SENSECF_CUDA_CHECK(cudaSetDevice(d));          // only in SENSECF_WITH_CUDA code
//   SENSECF_NCCL_CHECK(ncclAllReduce(...));
#pragma once

#include <cstdint>

namespace sensecf::detail {
[[noreturn]] void mpi_check_failed(int code, const char* expr, const char* file, int line);
[[noreturn]] void h5_check_failed(const char* expr, const char* file, int line);
[[noreturn]] void cuda_check_failed(int code, const char* what, const char* expr, const char* file,
                                    int line);
[[noreturn]] void nccl_check_failed(int code, const char* what, const char* expr, const char* file,
                                    int line);

template <class T>
T h5_check(T value, const char* expr, const char* file, int line) {
  if (value < 0) h5_check_failed(expr, file, line);
  return value;
}
}  // namespace sensecf::detail

#define SENSECF_MPI_CHECK(call)                                                 \
  do {                                                                          \
    const int sensecf_rc_ = (call);                                             \
    if (sensecf_rc_ != MPI_SUCCESS)                                             \
      ::sensecf::detail::mpi_check_failed(sensecf_rc_, #call, __FILE__, __LINE__); \
  } while (0)

#define SENSECF_H5_CHECK(call) ::sensecf::detail::h5_check((call), #call, __FILE__, __LINE__)

#define SENSECF_CUDA_CHECK(call)                                                          \
  do {                                                                                    \
    const cudaError_t sensecf_rc_ = (call);                                               \
    if (sensecf_rc_ != cudaSuccess)                                                       \
      ::sensecf::detail::cuda_check_failed(static_cast<int>(sensecf_rc_),                 \
                                           cudaGetErrorString(sensecf_rc_), #call, __FILE__, \
                                           __LINE__);                                     \
  } while (0)

#define SENSECF_NCCL_CHECK(call)                                                          \
  do {                                                                                    \
    const ncclResult_t sensecf_rc_ = (call);                                              \
    if (sensecf_rc_ != ncclSuccess)                                                       \
      ::sensecf::detail::nccl_check_failed(static_cast<int>(sensecf_rc_),                 \
                                           ncclGetErrorString(sensecf_rc_), #call, __FILE__, \
                                           __LINE__);                                     \
  } while (0)
