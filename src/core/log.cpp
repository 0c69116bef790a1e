// Rank-aware spdlog set-up: "[time] [rank r/n@host] [level] message" on stderr.
#include "sensecf/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include "sensecf/core/error.h"

namespace sensecf {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

void init_logging(const LogOptions& options, int rank, int world_size, const std::string& host) {
  auto level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    throw UsageError("unknown log level '" + options.level + "'",
                     "use one of trace, debug, info, warn, error, off");
  }
  if (rank != 0 && !options.all_ranks) level = std::max(level, spdlog::level::warn);

  auto logger = std::make_shared<spdlog::logger>(
      "sensecf", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  const std::string where = fmt::format("rank {}/{}@{}", rank, world_size, host.empty() ? host_name() : host);
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [" + where + "] [%^%l%$] %v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

}  // namespace sensecf
