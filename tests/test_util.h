// Helpers shared by the GoogleTest files: temporary directories and files,
// running the sensecf binary, and expecting an exception whose message
// contains given text.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "sensecf/data/dataset.h"

namespace sensecf::test {

// A continuous feature with just a name.
inline data::Feature feature(const std::string& name) {
  data::Feature f;
  f.name = name;
  return f;
}

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    auto base = std::filesystem::temp_directory_path() / "sensecf-test-XXXXXX";
    std::string templ = base.string();
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name), std::ios::binary) << text;
    return file(name);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and captures its output and exit code.
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string sensecf_bin() { return SENSECF_BIN_PATH; }

}  // namespace sensecf::test

// EXPECT that `statement` throws an exception of type `type` whose what()
// contains `text`.
#define EXPECT_THROW_WITH(statement, type, text)                                         \
  do {                                                                                   \
    try {                                                                                \
      statement;                                                                         \
      ADD_FAILURE() << "expected " #type " containing \"" << (text) << "\", nothing thrown"; \
    } catch (const type& e) {                                                            \
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos)                     \
          << "message was: " << e.what();                                                \
    }                                                                                    \
  } while (0)
