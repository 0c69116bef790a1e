# Bakes the git SHA and dependency versions into include/sensecf/core/build_info.h
# (generated in the build tree) for provenance attributes and --version.
find_package(Git QUIET)
set(SENSECF_GIT_SHA "unknown")
if(GIT_FOUND AND EXISTS ${CMAKE_SOURCE_DIR}/.git)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
                  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                  OUTPUT_VARIABLE SENSECF_GIT_SHA OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE _git_rc)
  if(NOT _git_rc EQUAL 0)
    set(SENSECF_GIT_SHA "unknown")
  endif()
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/build_info.h.in
               ${CMAKE_BINARY_DIR}/generated/sensecf/core/build_info.h @ONLY)
