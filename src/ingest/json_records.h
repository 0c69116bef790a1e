// Streaming reader of AI-READI's wearable JSON files: {"header": {...},
// "body": {"<key>": [record, ...]}} (or a bare "body": [record, ...], the v1
// pilot's CGM files). Records are handed over one at a time as flat lists of
// (dotted path, leaf value), so memory holds one record, never the file
// (real files are tens of MB). Private to src/ingest/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sensecf::ingest {

struct Leaf {
  enum class Kind { kString, kInteger, kNumber, kBool, kNull };
  Kind kind = Kind::kNull;
  std::string text;    // kString
  double number = 0;   // kInteger, kNumber (and kBool: 0/1)
};

// One record of the body array: its leaves by dotted path relative to the
// record ("blood_glucose.value", "effective_time_frame.time_interval.start_date_time").
class Record {
 public:
  const Leaf* find(std::string_view path) const;
  std::size_t index = 0;  // 0-based position in the body array
  void clear() { leaves_.clear(); }
  void add(std::string path, Leaf leaf) { leaves_.emplace_back(std::move(path), std::move(leaf)); }

 private:
  std::vector<std::pair<std::string, Leaf>> leaves_;
};

struct ReadResult {
  bool opened = true;             // false: the file could not be opened (`error` says why)
  bool ok = true;                 // false: not opened, or not valid JSON (truncated, ...)
  std::string error;              // what and where (byte offset), when !ok
  std::size_t records = 0;        // complete records handed over
  std::size_t bytes = 0;          // file size
  std::string header_timezone;    // header.timezone, "" when absent
  bool body_found = false;        // a body array (body.<key> or body) was seen
};

// Streams `path`, calling on_record for every complete object in
// body.<body_key>[] (or body[] when body is an array). Never throws itself:
// a file that cannot be opened or parsed is in the result. on_record may
// throw (strict mode): the exception propagates.
ReadResult read_records(const std::string& path, const std::string& body_key,
                        const std::function<void(const Record&)>& on_record);

}  // namespace sensecf::ingest
