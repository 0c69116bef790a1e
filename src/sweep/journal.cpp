// Append-only JSON-lines journal with fdatasync per batch.
#include "sensecf/sweep/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "sensecf/core/error.h"

namespace sensecf::sweep {
namespace {

constexpr int kJournalVersion = 1;

void write_all(int fd, const std::string& text, const std::string& path) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("cannot write the journal '{}': {}", path, std::strerror(errno)),
                  "is the disk full or the file system read-only?");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd) != 0)
    throw Error(fmt::format("cannot sync the journal '{}': {}", path, std::strerror(errno)),
                "is the disk full or the file system read-only?");
}

nlohmann::json header_json(const JournalHeader& h) {
  return {{"sensecf_journal", kJournalVersion}, {"config", h.config}, {"config_hash", h.config_hash},
          {"config_text", h.config_text}};
}

// Parses the file; returns the byte length of the well-formed prefix.
std::size_t parse(const std::string& path, JournalHeader* header, std::vector<JournalEntry>* entries) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("cannot read the journal '" + path + "'",
                "does it exist and is it readable? It lies next to --results, as RESULTS.journal");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::size_t pos = 0, good = 0;
  long line_no = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    ++line_no;
    const bool last = end == std::string::npos || end + 1 >= text.size();
    const std::string line = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    nlohmann::json j;
    try {
      if (end == std::string::npos) throw std::runtime_error("no end of line");
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      if (last) {
        spdlog::warn("journal {}: line {} is incomplete (the run was killed while writing it); it is dropped and "
                     "its task will run again",
                     path, line_no);
        break;
      }
      throw Error(fmt::format("journal {}: line {} is not valid JSON ({})", path, line_no, e.what()),
                  "the journal was edited or damaged; move it away together with the results file to start over");
    }
    try {
      if (line_no == 1) {
        if (j.value("sensecf_journal", 0) != kJournalVersion)
          throw Error(
              fmt::format("journal {}: not a sensecf journal (version {} expected)", path, kJournalVersion),
              "it was written by another program or sensecf version; move it away together with the "
              "results file to start over");
        header->config = j.at("config").get<std::string>();
        header->config_hash = j.at("config_hash").get<std::string>();
        header->config_text = j.value("config_text", std::string());
      } else if (entries) {
        entries->push_back({store::task_record_from_json(j.at("record")), store::task_output_from_json(j.at("output"))});
      }
    } catch (const nlohmann::json::exception& e) {
      throw Error(
          fmt::format("journal {}: line {}: {}", path, line_no, e.what()),
          "the journal was edited or damaged; move it away together with the results file to start over");
    }
    pos = end + 1;
    good = pos;
  }
  if (line_no == 0) throw Error("journal " + path + " is empty", "remove it together with the results file");
  return good;
}

}  // namespace

Journal::Journal(Journal&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
Journal& Journal::operator=(Journal&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}
Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

// One sweep per results file: a second one would run every remaining task again
// next to the first. The lock lives as long as the descriptor (the whole run).
void lock_or_refuse(int fd, const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return;
  if (errno == EWOULDBLOCK)
    throw UsageError("another sweep is running on '" + path + "' (its journal is locked)",
                     "wait for it to finish, or stop it (SIGUSR1 drains it) before resuming");
  spdlog::warn("cannot lock the journal '{}' ({}); make sure no other sweep uses the same results file", path,
               std::strerror(errno));
}

Journal Journal::create(const std::string& path, const JournalHeader& header) {
  Journal j;
  j.path_ = path;
  j.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (j.fd_ < 0)
    throw Error(fmt::format("cannot create the journal '{}': {}", path, std::strerror(errno)),
                "does the directory of --results exist and is it writable?");
  lock_or_refuse(j.fd_, path);
  write_all(j.fd_, header_json(header).dump() + "\n", path);
  return j;
}

Journal Journal::open(const std::string& path, JournalHeader* header, std::vector<JournalEntry>* entries) {
  Journal j;
  j.path_ = path;
  j.fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (j.fd_ < 0)
    throw Error(fmt::format("cannot open the journal '{}': {}", path, std::strerror(errno)),
                "is the journal next to --results writable?");
  lock_or_refuse(j.fd_, path);  // before reading: a running sweep may be appending
  const std::size_t good = parse(path, header, entries);
  if (::ftruncate(j.fd_, static_cast<off_t>(good)) != 0)
    throw Error(fmt::format("cannot cut the torn end off the journal '{}': {}", path, std::strerror(errno)),
                "is the file system read-only?");
  return j;
}

void Journal::read(const std::string& path, JournalHeader* header, std::vector<JournalEntry>* entries) {
  parse(path, header, entries);
}

void Journal::replace_header(const JournalHeader& header) {
  std::ifstream in(path_, std::ios::binary);
  if (!in)
    throw Error(fmt::format("cannot read the journal '{}'", path_),
                "was it moved or deleted while the sweep ran?");
  std::string first;
  std::getline(in, first);
  std::stringstream rest;
  rest << in.rdbuf();
  const std::string tmp = path_ + ".grow";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(fmt::format("cannot create '{}': {}", tmp, std::strerror(errno)),
                "is the directory of --results writable and the disk not full?");
  try {
    lock_or_refuse(fd, tmp);
    write_all(fd, header_json(header).dump() + "\n" + rest.str(), tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot replace the journal '{}': {}", path_, std::strerror(err)),
                "is the directory of --results writable?");
  }
  ::close(fd_);
  fd_ = fd;
}

void Journal::append(const std::vector<JournalEntry>& entries) {
  if (entries.empty()) return;
  std::string text;
  for (const auto& e : entries) {
    text += nlohmann::json{{"record", store::to_json(e.record)}, {"output", store::to_json(e.output)}}.dump();
    text += '\n';
  }
  write_all(fd_, text, path_);
}

std::map<std::string, std::string> config_values(const std::string& canonical) {
  std::map<std::string, std::string> kv;
  std::istringstream in(canonical);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find(" = ");
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return kv;
}

std::vector<std::string> config_differences(const std::string& stored, const std::string& current) {
  const auto a = config_values(stored), b = config_values(current);
  std::vector<std::string> diffs;
  for (const auto& [k, v] : a) {
    const auto it = b.find(k);
    if (it == b.end()) diffs.push_back(fmt::format("{}: {} -> (not set)", k, v));
    else if (it->second != v) diffs.push_back(fmt::format("{}: {} -> {}", k, v, it->second));
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) diffs.push_back(fmt::format("{}: (not set) -> {}", k, v));
  }
  return diffs;
}

}  // namespace sensecf::sweep
