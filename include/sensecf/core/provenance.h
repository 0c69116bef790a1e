// Provenance: what produced a result file — sensecf version, git SHA, the
// effective configuration and its hash, library versions, host, time. Written
// into every artifact (model directories, HDF5 attributes) so that a result can
// be traced back and a mismatch refused with a hint.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sensecf {

class Options;

struct Provenance {
  std::string format_version = "1";
  std::string sensecf_version;
  std::string git_sha;
  std::string command;
  std::string config_hash;
  std::string config_text;  // the effective INI
  std::string library_versions;
  std::string host;
  std::string created;  // UTC, ISO 8601

  nlohmann::json to_json() const;
};

Provenance make_provenance(const Options& options);
// "sensecf 0.1.0 (git abc123) LibTorch 1.13.1, HDF5 1.10.8, Boost 1.74, ..."
std::string version_string();
// Adds a library version known only at run time to version_string(): main()
// registers the MPI library's (dist::mpi_library_version()), so that core
// itself links no MPI.
void add_runtime_version(std::string text);
std::string utc_now_iso8601();

}  // namespace sensecf
