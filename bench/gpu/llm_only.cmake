# Adds bench_llmcf_gpu (bench/gpu/bench_llmcf_gpu.cmake) to the LLM-only build,
# which the top-level CMakeLists.txt configures without bench/.
# scripts/device/gpu-check's llmcf stage reconfigures its build with it:
#   cmake -DCMAKE_PROJECT_sensecf_INCLUDE=<repo>/bench/gpu/llm_only.cmake BUILD
# project(sensecf) includes this file; the include is deferred to the end of
# the top-level CMakeLists.txt, once sensecf_llm exists (a deferred call may not
# add a subdirectory, hence a plain include).
cmake_language(DEFER CALL include ${CMAKE_SOURCE_DIR}/bench/gpu/bench_llmcf_gpu.cmake)
