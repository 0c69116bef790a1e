// The sweep's append-only journal: the source of truth for resuming.
//
// One JSON object per line, next to the results file (R.h5.journal): a header
// line with the configuration, then one line per finished task attempt (its
// /tasks record and everything it produced). Each batch of lines is written
// with one write() and fdatasync()ed before the HDF5 file is touched, so a
// kill -9 at any moment loses at most the attempts not yet committed; a torn
// last line (the crash hit mid-write) is detected and cut off on the next open.
// The HDF5 file is rebuilt from the journal when a sweep resumes.
#pragma once

#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <vector>

#include "sensecf/store/results.h"

namespace sensecf::sweep {

struct JournalEntry {
  store::TaskRecord record;
  store::TaskOutput output;
  // false: the attempt failed with a PermanentError (core/error.h), and another
  // attempt would fail the same way; the scheduler does not retry it.
  bool retryable = true;
};

struct JournalHeader {
  std::string config;       // canonical "key = value" lines of every hashed option
  std::string config_hash;
  std::string config_text;  // the effective INI, for people
};

class Journal {
 public:
  Journal() = default;
  Journal(Journal&& other) noexcept;
  Journal& operator=(Journal&& other) noexcept;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  ~Journal();

  // Creates a journal with `header` (truncating any file at `path`).
  static Journal create(const std::string& path, const JournalHeader& header);
  // Opens an existing journal for appending; fills header and entries. A torn
  // last line is cut off (with a warning); a bad line elsewhere is an error
  // naming the line.
  static Journal open(const std::string& path, JournalHeader* header, std::vector<JournalEntry>* entries);
  // Reads without opening for writing (dry runs).
  static void read(const std::string& path, JournalHeader* header, std::vector<JournalEntry>* entries);

  // Appends the entries durably (one write, then fdatasync).
  void append(const std::vector<JournalEntry>& entries);
  // A grown study (identity.h): the same entries under a new header, written
  // to a new file that replaces this one by rename (locked before it
  // appears), so a crash leaves the old journal or the new one, whole.
  void replace_header(const JournalHeader& header);
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The key -> value map of a canonical config ("key = value" lines).
std::map<std::string, std::string> config_values(const std::string& canonical);
// Keys whose values differ between two canonical configs ("key = value" lines),
// formatted as "key: old -> new"; empty when they are equal.
std::vector<std::string> config_differences(const std::string& stored, const std::string& current);

}  // namespace sensecf::sweep
