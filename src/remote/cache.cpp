#include "sensecf/remote/cache.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sensecf/core/error.h"

namespace sensecf::remote {

namespace fs = std::filesystem;

ResponseCache::ResponseCache(std::string dir) : dir_(std::move(dir)) {}

std::string ResponseCache::path(const std::string& key) const {
  return dir_ + "/" + key.substr(0, 2) + "/" + key + ".json";
}

std::optional<nlohmann::json> ResponseCache::find(const std::string& key, const std::string& body) const {
  const std::string file = path(key);
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  try {
    auto entry = nlohmann::json::parse(text.str());
    if (!entry.is_object() || !entry.contains("request") || !entry.contains("response")) {
      spdlog::warn("response cache: {} is not a cache entry (no request/response); asking the server again", file);
      return std::nullopt;
    }
    if (entry["request"].dump() != body) {
      spdlog::warn("response cache: {} holds another request than its name says; asking the server again", file);
      return std::nullopt;
    }
    return std::move(entry["response"]);
  } catch (const nlohmann::json::exception& e) {
    spdlog::warn("response cache: {} is not valid JSON ({}); asking the server again", file, e.what());
    return std::nullopt;
  }
}

void ResponseCache::store(const std::string& key, const std::string& body, const nlohmann::json& response) const {
  const std::string file = path(key);
  std::error_code ec;
  fs::create_directories(fs::path(file).parent_path(), ec);
  if (ec)
    throw Error("response cache: cannot create " + fs::path(file).parent_path().string() + ": " + ec.message(),
                "point lm.cache_dir at a writable directory");
  static std::atomic<unsigned> counter{0};
  const std::string tmp = file + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    // The request is stored as parsed JSON so that its dump() equals the body.
    out << "{\"request\":" << nlohmann::json::parse(body).dump() << ",\"response\":" << response.dump() << "}\n";
    out.flush();
    if (!out) throw Error("response cache: cannot write " + tmp, "is the disk full? lm.cache_dir: " + dir_);
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp);
    throw Error("response cache: cannot rename " + tmp + " to " + file + ": " + ec.message());
  }
}

}  // namespace sensecf::remote
