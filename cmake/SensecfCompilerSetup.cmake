# Warnings, sanitizers and compiler caching for every sensecf target.
# Call sensecf_target_defaults(<target>) on each target the project defines.

find_program(SENSECF_CCACHE ccache)
if(SENSECF_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${SENSECF_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${SENSECF_CCACHE})
  # Precompiled headers and ccache: these two sloppiness settings let ccache cache
  # translation units that use a PCH (see ccache manual, "Precompiled headers").
  set(ENV{CCACHE_SLOPPINESS} "pch_defines,time_macros,include_file_mtime,include_file_ctime")
  message(STATUS "sensecf: using ccache (${SENSECF_CCACHE})")
endif()

function(sensecf_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                    -Wno-unused-parameter>)
  if(SENSECF_WERROR)
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Werror>)
  endif()
  if(SENSECF_SANITIZE)
    string(REPLACE ";" "," _san "${SENSECF_SANITIZE}")
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
  endif()
endfunction()

# The LibTorch headers on a target's include path. A pip torch ships its own
# fmt (a newer major version) in its include directory; spdlog must see the fmt
# it was built against, so the include directories of spdlog and fmt go first.
function(sensecf_torch_headers target)
  foreach(dep spdlog::spdlog fmt::fmt)
    if(TARGET ${dep})
      get_target_property(_inc ${dep} INTERFACE_INCLUDE_DIRECTORIES)
      if(_inc)
        target_include_directories(${target} SYSTEM BEFORE PRIVATE ${_inc})
      endif()
    endif()
  endforeach()
  target_include_directories(${target} SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
endfunction()

# LibTorch headers are slow to compile (~20 s per translation unit). Targets that
# include <torch/torch.h> share one precompiled header built once.
function(sensecf_use_torch target)
  target_link_libraries(${target} PRIVATE ${TORCH_LIBRARIES})
  sensecf_torch_headers(${target})
  if(TARGET sensecf_torch_pch AND NOT target STREQUAL "sensecf_torch_pch")
    target_precompile_headers(${target} REUSE_FROM sensecf_torch_pch)
  endif()
endfunction()
