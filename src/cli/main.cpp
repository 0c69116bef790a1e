// sensecf: entry point. Dispatches to a sub-command and turns exceptions into
// messages and exit codes (0 ok, 1 runtime error, 2 usage error). The command
// table and what an error does to MPI come from the build's command set:
// command_set.cpp (sensecf-full: every command, MPI), front/command_set_front.cpp
// (the front-end `sensecf`: no LibTorch, hands the rest to sensecf-full) or
// command_set_llm.cpp (the LLM-only build of the GPU kit: `lm` alone, no MPI).
#include <spdlog/spdlog.h>

#include <cstring>
#include <iostream>
#include <map>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/provenance.h"
#include "sensecf/core/strings.h"

namespace {

using sensecf::cli::commands;

void print_error(const std::string& command, const char* what, const std::string& hint) {
  // One write: std::cerr is unbuffered, and the ranks of an MPI job share
  // one stderr, so piecewise output interleaves with other ranks' messages.
  const int rank = sensecf::cli::error_rank();
  std::string message = "sensecf " + command + ": error" + (rank ? " on rank " + std::to_string(rank) : "") + ": " +
                        what + "\n";
  if (!hint.empty()) message += "  hint: " + hint + "\n";
  std::cerr << message << std::flush;
}

void print_usage() {
  std::cout << "sensecf — distributed experiment runner for LLM-generated counterfactual explanations\n\n"
               "Usage: sensecf <command> [options]      (sensecf <command> --help for its options)\n\n"
               "Commands:\n";
  for (const auto& [name, cmd] : commands()) {
    std::cout << "  " << name << std::string(14 - std::min<std::size_t>(13, name.size()), ' ')
              << cmd.summary << "\n";
  }
  std::cout << "\nOptions:\n  -h, --help     this help\n  --version      versions of sensecf and its libraries\n";
}

}  // namespace

int main(int argc, char** argv) {
  sensecf::cli::register_runtime_versions();
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << sensecf::version_string() << "\n";
    return 0;
  }
  const std::string name = argv[1];
  const auto it = commands().find(name);
  if (it == commands().end()) {
    std::vector<std::string> names;
    for (const auto& [n, c] : commands()) names.push_back(n);
    const std::string best = sensecf::closest_match(name, names);
    std::cerr << "sensecf: unknown command '" << name << "'"
              << (best.empty() ? "" : "; did you mean '" + best + "'?") << "\n"
              << "Run `sensecf --help` for the list of commands.\n";
    return 2;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    sensecf::cli::hand_over_command(name, argv);  // the front-end: sensecf-full runs lm, sweep, info
    return it->second.run(args);
  } catch (const sensecf::UsageError& e) {
    print_error(name, e.what(), e.hint());
    return sensecf::cli::end_after_error(2, /*every_rank=*/true);
  } catch (const sensecf::Error& e) {
    print_error(name, e.what(), e.hint());
    return sensecf::cli::end_after_error(1, /*every_rank=*/false);
  } catch (const std::exception& e) {
    // A library's exception that no check caught (a bug: every input is checked
    // before it reaches a library). LibTorch's carry a C++ backtrace; the first
    // lines say what went wrong, the frames only matter to a debugger.
    std::string what = e.what();
    if (const auto cut = what.find("\nException raised from "); cut != std::string::npos) what.resize(cut);
    print_error(name, what.c_str(), "this is unexpected; please report it with the command line");
    return sensecf::cli::end_after_error(1, /*every_rank=*/false);
  }
}
