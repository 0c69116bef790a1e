// The response cache of remote LLMs: one JSON file per answered request,
// named by the SHA-256 of the exact request body (model, messages, sampling
// parameters, seed, response format; never the URL or the key):
//
//     <dir>/<first two hex digits>/<sha256>.json
//         {"request": <the body>, "response": <the server's JSON>}
//
// A rerun, a resumed sweep or an offline rebuild of a finished study finds
// every answer already paid for. Entries are written to a temporary file and
// renamed, so a reader (another rank, a killed run) sees whole entries or none;
// several ranks may share one directory. A hit whose stored request differs
// from the body (a corrupt or foreign file) is a miss, with a warning.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace sensecf::remote {

class ResponseCache {
 public:
  explicit ResponseCache(std::string dir);  // created on first store
  const std::string& dir() const { return dir_; }

  std::string path(const std::string& key) const;
  // The stored response for this body (key = sha256_hex(body)), if any.
  std::optional<nlohmann::json> find(const std::string& key, const std::string& body) const;
  // Stores a response; throws sensecf::Error when the directory is not writable.
  void store(const std::string& key, const std::string& body, const nlohmann::json& response) const;

 private:
  std::string dir_;
};

}  // namespace sensecf::remote
