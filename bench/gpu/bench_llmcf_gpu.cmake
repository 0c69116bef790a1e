# bench_llmcf_gpu: CFs/s of the LLM CF generator at Llama-3.1-8B shapes on a GPU
# (scripts/device/gpu-check, stage llmcf). The GPU machine builds only the LLM
# stack (SENSECF_LLM_ONLY: no cf/clf modules, whose other methods need XGBoost
# and libsvm), so the target compiles the llmcf and data sources and the cf
# interface's method-independent part (cf/generator_base.cpp, cf/metrics.cpp)
# itself, on top of sensecf_llm; the local backend only (no_remote_backend.cpp:
# the kit has no libcurl). Included by bench/CMakeLists.txt in
# the full build and by llm_only.cmake in the LLM-only build (both build the
# same thing), hence the paths from CMAKE_CURRENT_LIST_DIR. Not in `all`:
#   cmake --build BUILD --target bench_llmcf_gpu
set(_sensecf_src ${PROJECT_SOURCE_DIR}/src)
file(GLOB _sensecf_data_sources CONFIGURE_DEPENDS ${_sensecf_src}/data/*.cpp)
add_executable(bench_llmcf_gpu EXCLUDE_FROM_ALL
  ${CMAKE_CURRENT_LIST_DIR}/bench_llmcf_gpu.cpp ${_sensecf_src}/cf/generator_base.cpp
  ${_sensecf_src}/llmcf/answer.cpp ${_sensecf_src}/llmcf/generator.cpp ${_sensecf_src}/llmcf/grammar.cpp
  ${_sensecf_src}/llmcf/local_backend.cpp ${CMAKE_CURRENT_LIST_DIR}/no_remote_backend.cpp
  ${_sensecf_src}/remote/usage.cpp
  ${_sensecf_src}/llmcf/parse.cpp ${_sensecf_src}/llmcf/prompt.cpp
  ${_sensecf_src}/cf/metrics.cpp ${_sensecf_data_sources})
target_include_directories(bench_llmcf_gpu PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/generated)
target_link_libraries(bench_llmcf_gpu PRIVATE sensecf_llm sensecf_core ${TORCH_LIBRARIES} Threads::Threads)
sensecf_torch_headers(bench_llmcf_gpu)
sensecf_target_defaults(bench_llmcf_gpu)
set_target_properties(bench_llmcf_gpu PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
