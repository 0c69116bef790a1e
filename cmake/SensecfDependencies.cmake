# Finds every third-party dependency. All of them come from Debian packages
# (scripts/setup-deps) on the CPU build; a GPU build points CMAKE_PREFIX_PATH at a
# CUDA LibTorch 2.x (docs/gpu.md). CUDA and NCCL are optional and auto-detected.
# SENSECF_LLM_ONLY stops after LibTorch, Boost, spdlog, nlohmann_json.

find_package(Torch REQUIRED)
# Torch adds its ABI flag through TORCH_CXX_FLAGS; keep every target on that ABI.
string(APPEND CMAKE_CXX_FLAGS " ${TORCH_CXX_FLAGS}")

# A CUDA LibTorch (pip torch on a GPU machine) defines the torch_cuda target;
# then the model's CUDA-only code (the CUDA-graph decode step) is compiled.
option(SENSECF_TORCH_CUDA_PATHS "Compile the CUDA-only code paths when LibTorch has CUDA" ON)
set(SENSECF_TORCH_CUDA OFF)
if(TARGET torch_cuda AND SENSECF_TORCH_CUDA_PATHS)
  set(SENSECF_TORCH_CUDA ON)
endif()

find_package(Boost 1.71 REQUIRED COMPONENTS program_options)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(Threads REQUIRED)

if(SENSECF_LLM_ONLY)
  set(HDF5_VERSION "none")
  message(STATUS "sensecf: LLM-only build (core, llm, sensecf lm): LibTorch ${Torch_VERSION}, "
                 "CUDA LibTorch ${SENSECF_TORCH_CUDA}")
  return()
endif()

find_package(MPI REQUIRED COMPONENTS C)
# Remote LLMs (OpenAI-compatible endpoints): libcurl for HTTP(S), OpenSSL's
# SHA-256 for the response cache's keys.
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(HDF5 REQUIRED COMPONENTS C)
# XGBoost: Debian's xgboost-config.cmake references the `xgboost` CLI binary,
# which libxgboost-dev does not ship, so find the library directly.
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h REQUIRED)
find_library(XGBOOST_LIBRARY xgboost REQUIRED)
add_library(sensecf_xgboost INTERFACE)
target_include_directories(sensecf_xgboost SYSTEM INTERFACE ${XGBOOST_INCLUDE_DIR})
target_link_libraries(sensecf_xgboost INTERFACE ${XGBOOST_LIBRARY})

find_path(LIBSVM_INCLUDE_DIR svm.h PATH_SUFFIXES libsvm REQUIRED)
find_library(LIBSVM_LIBRARY svm REQUIRED)
add_library(sensecf_libsvm INTERFACE)
target_include_directories(sensecf_libsvm SYSTEM INTERFACE ${LIBSVM_INCLUDE_DIR})
target_link_libraries(sensecf_libsvm INTERFACE ${LIBSVM_LIBRARY})

# HDF5 as one imported-like interface target (FindHDF5 in CMake 3.25 gives variables).
add_library(sensecf_hdf5 INTERFACE)
target_include_directories(sensecf_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(sensecf_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(sensecf_hdf5 INTERFACE ${HDF5_DEFINITIONS})

# --- CUDA and NCCL (optional) -------------------------------------------------
set(SENSECF_HAVE_CUDA OFF)
set(SENSECF_HAVE_NCCL OFF)
if(NOT SENSECF_WITH_CUDA STREQUAL "OFF")
  if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(SENSECF_HAVE_CUDA ON)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} $ENV{NCCL_HOME}/include)
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} $ENV{NCCL_HOME}/lib)
    if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      set(SENSECF_HAVE_NCCL ON)
    endif()
  elseif(SENSECF_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "SENSECF_WITH_CUDA=ON but no CUDA toolkit was found; set CUDAToolkit_ROOT")
  endif()
endif()
message(STATUS "sensecf: LibTorch ${Torch_VERSION}, MPI ${MPI_C_VERSION}, HDF5 ${HDF5_VERSION}, "
               "CUDA ${SENSECF_HAVE_CUDA} ${CUDAToolkit_VERSION}, NCCL ${SENSECF_HAVE_NCCL}, "
               "CUDA LibTorch ${SENSECF_TORCH_CUDA}")
