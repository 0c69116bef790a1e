// Rank-aware logging on top of spdlog.
//
// Every line carries the time, "rank r/n@host" and the level. Non-zero ranks are
// quiet by default (warnings and errors only) so an N-rank job reads like a
// 1-rank one; `--log.all-ranks` turns them up. Logging goes to stderr so that
// stdout stays machine-readable (metrics lines, JSON).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace sensecf {

struct LogOptions {
  std::string level = "info";  // trace|debug|info|warn|error|off
  bool all_ranks = false;      // give non-zero ranks the same level as rank 0
};

// Installs the default logger. Safe to call again (e.g. after MPI is up and the
// rank is known).
void init_logging(const LogOptions& options, int rank = 0, int world_size = 1,
                  const std::string& host = {});

// The machine's host name (for log lines and provenance).
std::string host_name();

}  // namespace sensecf
