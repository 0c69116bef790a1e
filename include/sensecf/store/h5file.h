// HDF5 results-file primitives: a file handle with root attributes, and Table —
// a chunked, extendable, compound dataset with fixed-length strings that h5py
// reads as a NumPy structured array and pandas as a DataFrame.
//
// Only rank 0 writes (the sweep owns that rule); this layer is plain serial
// HDF5. Every HDF5 call goes through SENSECF_H5_CHECK.
#pragma once

#include <hdf5.h>

#include <string>
#include <variant>
#include <vector>

namespace sensecf::store {

// RAII owner of one hid_t, closed with the matching H5*close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  void reset();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// HDF5 file locking for files opened from now on. Locks fail on some network
// file systems (NFS: "No locks available"); best-effort ignores that. The
// environment variable HDF5_USE_FILE_LOCKING=FALSE still wins (HDF5's rule).
enum class FileLocking { kOn, kOff, kBestEffort };
void set_file_locking(FileLocking mode);
FileLocking parse_file_locking(const std::string& text);  // on | off | best-effort

class H5File {
 public:
  static H5File create(const std::string& path);  // truncates an existing file
  static H5File open(const std::string& path, bool writable);
  hid_t id() const { return file_.get(); }
  const std::string& path() const { return path_; }

  void set_attribute(const std::string& name, const std::string& value);
  bool has_attribute(const std::string& name) const;
  std::string attribute(const std::string& name) const;  // throws when absent
  bool exists(const std::string& object_path) const;
  void flush();

  // Attributes of a group or dataset (`object` is its path, "/" = the file).
  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  std::string attribute(const std::string& object, const std::string& name) const;  // throws when absent
  bool has_attribute(const std::string& object, const std::string& name) const;

  // Plain n-dimensional arrays (created once, not extendable); intermediate
  // groups are created. dims: the shape, row-major.
  void write_array(const std::string& path, const std::vector<double>& values, const std::vector<std::size_t>& dims);
  void write_array(const std::string& path, const std::vector<long long>& values,
                   const std::vector<std::size_t>& dims);
  // A 1-D array of variable-length UTF-8 strings (h5py: `ds.asstr()[...]`), for
  // text of any length (an LLM's raw answer); empty strings are kept.
  void write_strings(const std::string& path, const std::vector<std::string>& values);
  std::vector<double> read_doubles(const std::string& path, std::vector<std::size_t>* dims = nullptr) const;
  std::vector<long long> read_ints(const std::string& path, std::vector<std::size_t>* dims = nullptr) const;
  // Variable-length or fixed-length strings of a 1-D dataset.
  std::vector<std::string> read_strings(const std::string& path) const;
  // Names of the members of a group, sorted.
  std::vector<std::string> list(const std::string& group) const;

 private:
  Handle file_;
  std::string path_;
};

enum class ColumnType { kInt64, kFloat64, kString };
struct Column {
  std::string name;
  ColumnType type = ColumnType::kFloat64;
  std::size_t length = 0;  // kString: bytes incl. the terminating NUL
};
using Value = std::variant<long long, double, std::string>;
using Row = std::vector<Value>;

class Table {
 public:
  // Creates `path` (intermediate groups included) with the given columns.
  static Table create(H5File& file, const std::string& path, std::vector<Column> columns,
                      std::size_t chunk_rows = 256);
  static Table open(H5File& file, const std::string& path);

  void append(const std::vector<Row>& rows);
  std::size_t size() const;
  std::vector<Row> read() const;
  const std::vector<Column>& columns() const { return columns_; }

 private:
  Handle dataset_;
  Handle type_;
  std::vector<Column> columns_;
  std::vector<std::size_t> offsets_;
  std::size_t row_bytes_ = 0;
  std::string path_;
};

}  // namespace sensecf::store
