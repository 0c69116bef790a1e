// Provenance records and version strings.
#include "sensecf/core/provenance.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/version.h>

#include <boost/version.hpp>
#include <ctime>
#include <utility>
#include <vector>

#include "sensecf/core/build_info.h"
#include "sensecf/core/log.h"
#include "sensecf/core/options.h"

namespace sensecf {

nlohmann::json Provenance::to_json() const {
  return {{"format_version", format_version}, {"sensecf_version", sensecf_version},
          {"git_sha", git_sha},               {"command", command},
          {"config_hash", config_hash},       {"config", config_text},
          {"library_versions", library_versions}, {"host", host},
          {"created", created}};
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {
std::vector<std::string>& runtime_versions() {
  static std::vector<std::string> versions;
  return versions;
}
}  // namespace

void add_runtime_version(std::string text) { runtime_versions().push_back(std::move(text)); }

std::string version_string() {
  std::string runtime;
  for (const auto& v : runtime_versions()) runtime += ", " + v;
  return fmt::format("sensecf {} (git {}, {}) LibTorch {}, HDF5 {}, Boost {}.{}, spdlog {}.{}{}, CUDA build {}",
                     SENSECF_VERSION, SENSECF_GIT_SHA, SENSECF_BUILD_TYPE, SENSECF_TORCH_VERSION,
                     SENSECF_HDF5_VERSION, BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                     SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, runtime, SENSECF_CUDA_BUILD);
}

Provenance make_provenance(const Options& options) {
  Provenance p;
  p.sensecf_version = SENSECF_VERSION;
  p.git_sha = SENSECF_GIT_SHA;
  p.command = options.command();
  p.config_hash = options.config_hash();
  p.config_text = options.effective_ini();
  p.library_versions = version_string();
  p.host = host_name();
  p.created = utc_now_iso8601();
  return p;
}

}  // namespace sensecf
