// The command set of the front-end `sensecf`: the binary users run, built
// without LibTorch, CUDA or NCCL so that it starts in milliseconds instead of
// ~0.5 s (bench/startup/measure.sh; docs/binaries.md). It runs every command
// and case that needs no LibTorch itself and hands the others to sensecf-full,
// the build with every command, by execv with the unchanged argv:
//
//   whole commands   lm, sweep, info (LibTorch, MPI jobs, GPU binding), with
//                    their --help, before anything runs (hand_over_command)
//   options          explain, evaluate-cf, train-clf with an nn classifier
//                    (meta.json's kind, or --model nn / --reduce), explain with a
//                    LibTorch method (cf::method_needs_torch): after parsing,
//                    before the first log line or file (hand_over_if)
//
// Both decisions are made before any side effect, so sensecf-full produces
// exactly what it would have produced if run directly. sensecf-full is the file
// next to this executable (/proc/self/exe), or SENSECF_FULL_BINARY.
//
// Not here: MPI. The front-end never initialises it (no command it runs uses
// it); it links libmpi only for the library's version in --version and
// provenance, which must read as sensecf-full's.
#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "sensecf/cf/generator.h"
#include "sensecf/core/error.h"
#include "sensecf/core/provenance.h"
#include "sensecf/dist/mpi_env.h"

namespace sensecf::cli {
namespace {

char** g_argv = nullptr;  // main()'s, for execv

// The sensecf-full to run: $SENSECF_FULL_BINARY, else sensecf-full beside this executable.
std::string full_binary() {
  if (const char* path = std::getenv("SENSECF_FULL_BINARY"); path && *path) return path;
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) {
    throw Error("cannot find sensecf-full: /proc/self/exe is unreadable (" + error.message() + ")",
                "set SENSECF_FULL_BINARY to the sensecf-full of this build");
  }
  return (self.parent_path() / "sensecf-full").string();
}

[[noreturn]] void run_full_binary() {
  const std::string path = full_binary();
  std::cout.flush();
  std::cerr.flush();
  ::execv(path.c_str(), g_argv);
  const int error = errno;
  throw Error(fmt::format("this needs sensecf-full (the build with LibTorch), and {} cannot be run: {}", path,
                          std::strerror(error)),
              "build it (`cmake --build build/cpu-release --target sensecf` builds both binaries) and keep it "
              "beside sensecf, or set SENSECF_FULL_BINARY to it");
}

}  // namespace

const std::map<std::string, Command>& commands() {
  // lm, sweep and info have no function here: hand_over_command runs sensecf-full for them.
  static const std::map<std::string, Command> table = command_table(torch_free_commands());
  return table;
}

void register_runtime_versions() {
  add_runtime_version(dist::mpi_library_version());
  // The LLM methods (llm:<model>:<mode>) are sensecf-full's: the name is
  // accepted here and checked there (cf::method_needs_torch is true for it).
  cf::register_method_family(
      "llm:",
      [](const cf::CfOptions& o) -> std::unique_ptr<cf::Generator> {
        throw Error("internal: method '" + o.method + "' reached the front-end, which has no LLM methods",
                    "please report it with the command line; run sensecf-full directly meanwhile");
      },
      [](const std::string&) {});
}

void hand_over_command(const std::string& name, char** argv) {
  g_argv = argv;
  if (!commands().at(name).run) run_full_binary();
}

void hand_over_if(const std::function<bool()>& needs_torch) {
  if (needs_torch()) run_full_binary();
}

std::unique_ptr<Communicator> job_communicator() {
  throw Error("internal: a data-parallel command reached the front-end, which has no MPI communicator",
              "please report it with the command line; run sensecf-full directly meanwhile");
}

// MPI is never initialised here: an error ends this process alone.
int error_rank() { return 0; }
int end_after_error(int exit_code, bool /*every_rank*/) { return exit_code; }

}  // namespace sensecf::cli
