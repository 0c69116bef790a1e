// The per-process file a fuzz target writes its input to, for readers that
// take a path (in memory where /dev/shm exists); removed at exit.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace sensecf::fuzz {

inline const std::string& temp_file(const char* extension) {
  static std::string path;
  path = std::string(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/sensecf_fuzz_" +
         std::to_string(::getpid()) + "." + extension;
  std::atexit([] { std::remove(path.c_str()); });
  return path;
}

}  // namespace sensecf::fuzz
