#include "json_records.h"

#include <spdlog/fmt/fmt.h>

#include <cstddef>
#include <cstdio>
#include <iterator>
#include <memory>
#include <vector>
#include <nlohmann/json.hpp>


namespace sensecf::ingest {

const Leaf* Record::find(std::string_view path) const {
  for (const auto& [p, leaf] : leaves_)
    if (p == path) return &leaf;
  return nullptr;
}

namespace {

// What a JSON container is, seen from the file's top.
enum class Role { kTop, kHeader, kBody, kContainer, kRecord, kInRecord, kOther };

struct Frame {
  Role role;
  bool array;
  std::size_t path_len;   // length of the record-relative path before this frame
  std::size_t count = 0;  // elements seen (arrays)
};

class Handler : public nlohmann::json_sax<nlohmann::json> {
 public:
  Handler(const std::string& body_key, const std::function<void(const Record&)>& on_record, ReadResult& result)
      : body_key_(body_key), on_record_(on_record), result_(result) {}

  bool null() override { return leaf({Leaf::Kind::kNull, {}, 0}); }
  bool boolean(bool v) override { return leaf({Leaf::Kind::kBool, {}, v ? 1.0 : 0.0}); }
  bool number_integer(number_integer_t v) override {
    return leaf({Leaf::Kind::kInteger, {}, static_cast<double>(v)});
  }
  bool number_unsigned(number_unsigned_t v) override {
    return leaf({Leaf::Kind::kInteger, {}, static_cast<double>(v)});
  }
  bool number_float(number_float_t v, const string_t&) override { return leaf({Leaf::Kind::kNumber, {}, v}); }
  bool string(string_t& v) override {
    if (!stack_.empty() && stack_.back().role == Role::kHeader && key_ == "timezone") result_.header_timezone = v;
    return leaf({Leaf::Kind::kString, std::move(v), 0});
  }
  bool binary(binary_t&) override { return leaf({Leaf::Kind::kNull, {}, 0}); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override { return open(false); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) override {
    result_.ok = false;
    const std::string what = ex.what();
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    const auto colon = what.find("parse error");
    result_.error = fmt::format("not valid JSON at byte {} (near '{}'): {}", position,
                                last_token.substr(0, 40), colon == std::string::npos ? what : what.substr(colon));
    return false;
  }

 private:
  // The name a new value gets under the record-relative path.
  void push_name() {
    const Frame& parent = stack_.back();
    if (!path_.empty()) path_ += '.';
    if (parent.array) {
      path_ += std::to_string(parent.count);
    } else {
      path_ += key_;
    }
  }

  bool leaf(Leaf value) {
    if (stack_.empty()) return true;
    Frame& parent = stack_.back();
    if (parent.role == Role::kRecord || parent.role == Role::kInRecord) {
      const std::size_t len = path_.size();
      push_name();
      record_.add(path_, std::move(value));
      path_.resize(len);
    }
    if (parent.array) ++parent.count;
    return true;
  }

  bool open(bool array) {
    Role role = Role::kOther;
    const std::size_t len = path_.size();
    if (stack_.empty()) {
      role = array ? Role::kOther : Role::kTop;
    } else {
      Frame& parent = stack_.back();
      switch (parent.role) {
        case Role::kTop:
          if (key_ == "header" && !array) role = Role::kHeader;
          if (key_ == "body") role = array ? Role::kContainer : Role::kBody;
          break;
        case Role::kBody:
          if (key_ == body_key_ && array) role = Role::kContainer;
          break;
        case Role::kContainer:
          if (!array) {
            role = Role::kRecord;
            record_.clear();
            record_.index = parent.count;
            path_.clear();
          }
          break;
        case Role::kRecord:
        case Role::kInRecord:
          role = Role::kInRecord;
          push_name();
          break;
        default:
          break;
      }
      if (parent.array) ++parent.count;
    }
    if (role == Role::kContainer) result_.body_found = true;
    stack_.push_back({role, array, len});
    return true;
  }

  bool close() {
    const Frame frame = stack_.back();
    stack_.pop_back();
    if (frame.role == Role::kRecord) {
      on_record_(record_);
      ++result_.records;
      path_.clear();
    } else if (frame.role == Role::kInRecord) {
      path_.resize(frame.path_len);
    }
    return true;
  }

  const std::string& body_key_;
  const std::function<void(const Record&)>& on_record_;
  ReadResult& result_;
  std::vector<Frame> stack_;
  std::string key_;
  std::string path_;
  Record record_;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// The file's bytes in 1 MB blocks, as the input iterator nlohmann's parser
// reads: no per-character stdio call, and never more than a block in memory.
class BlockReader {
 public:
  explicit BlockReader(std::FILE* file) : file_(file), block_(1 << 20) { refill(); }
  bool at_end() const { return pos_ == size_; }
  char get() const { return block_[pos_]; }
  void next() {
    if (++pos_ == size_) refill();
  }

 private:
  void refill() {
    size_ = std::fread(block_.data(), 1, block_.size(), file_);
    pos_ = 0;
  }
  std::FILE* file_;
  std::vector<char> block_;
  std::size_t pos_ = 0, size_ = 0;
};

class BlockIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = char;

  BlockIterator() = default;  // the end
  explicit BlockIterator(BlockReader* reader) : reader_(reader->at_end() ? nullptr : reader) {}
  char operator*() const { return reader_->get(); }
  BlockIterator& operator++() {
    reader_->next();
    if (reader_->at_end()) reader_ = nullptr;
    return *this;
  }
  bool operator==(const BlockIterator& o) const { return reader_ == o.reader_; }
  bool operator!=(const BlockIterator& o) const { return reader_ != o.reader_; }

 private:
  BlockReader* reader_ = nullptr;
};

}  // namespace

ReadResult read_records(const std::string& path, const std::string& body_key,
                        const std::function<void(const Record&)>& on_record) {
  ReadResult result;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    result.opened = result.ok = false;
    result.error = "cannot open the file (check that it is readable)";
    return result;
  }
  if (std::fseek(file.get(), 0, SEEK_END) == 0) {
    result.bytes = static_cast<std::size_t>(std::ftell(file.get()));
    std::rewind(file.get());
  }
  Handler handler(body_key, on_record, result);
  BlockReader reader(file.get());
  nlohmann::json::sax_parse(BlockIterator(&reader), BlockIterator(), &handler);
  return result;
}

}  // namespace sensecf::ingest
