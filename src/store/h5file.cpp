// HDF5 file, attributes and compound tables (serial HDF5 C API).
#include "sensecf/store/h5file.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::store {

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = -1;
}

namespace {
// HDF5 prints its own error stack to stderr by default; we report through
// SENSECF_H5_CHECK instead.
void silence_hdf5() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

Handle string_type(std::size_t length) {
  Handle t(SENSECF_H5_CHECK(H5Tcopy(H5T_C_S1)), H5Tclose);
  SENSECF_H5_CHECK(H5Tset_size(t.get(), length));
  SENSECF_H5_CHECK(H5Tset_strpad(t.get(), H5T_STR_NULLTERM));
  return t;
}
}  // namespace

namespace {
FileLocking g_locking = FileLocking::kBestEffort;

Handle access_plist() {
  Handle fapl(SENSECF_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS)), H5Pclose);
  SENSECF_H5_CHECK(H5Pset_file_locking(fapl.get(), g_locking != FileLocking::kOff,
                                       g_locking == FileLocking::kBestEffort));
  return fapl;
}
}  // namespace

void set_file_locking(FileLocking mode) { g_locking = mode; }

FileLocking parse_file_locking(const std::string& text) {
  if (text == "on") return FileLocking::kOn;
  if (text == "off") return FileLocking::kOff;
  if (text == "best-effort") return FileLocking::kBestEffort;
  throw UsageError("HDF5 file locking must be on, off or best-effort, got '" + text + "'");
}

H5File H5File::create(const std::string& path) {
  silence_hdf5();
  H5File f;
  f.path_ = path;
  Handle fapl = access_plist();
  // The 1.8 file format and later: object headers, B-trees and the superblock
  // carry checksums (HDF5 >= 1.8 reads it; h5py and pandas do).
  SENSECF_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST));
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  if (id < 0) throw Error("cannot create HDF5 file '" + path + "'", "does the directory exist and is it writable?");
  f.file_ = Handle(id, H5Fclose);
  return f;
}

H5File H5File::open(const std::string& path, bool writable) {
  silence_hdf5();
  H5File f;
  f.path_ = path;
  if (H5Fis_hdf5(path.c_str()) <= 0) {  // H5Fis_accessible needs HDF5 >= 1.12
    throw Error("'" + path + "' is missing or not an HDF5 file");
  }
  Handle fapl = access_plist();
  const hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get());
  if (id < 0)
    throw Error("cannot open HDF5 file '" + path + "'",
                "if it is open elsewhere, close that; on NFS try --run.hdf5_locking off or HDF5_USE_FILE_LOCKING=FALSE");
  f.file_ = Handle(id, H5Fclose);
  return f;
}

namespace {
// A scalar fixed-length string attribute `name` of object `obj` (replaced if present).
void write_string_attribute(hid_t obj, const std::string& name, const std::string& value) {
  if (H5Aexists(obj, name.c_str()) > 0) SENSECF_H5_CHECK(H5Adelete(obj, name.c_str()));
  Handle type = string_type(value.size() + 1);
  Handle space(SENSECF_H5_CHECK(H5Screate(H5S_SCALAR)), H5Sclose);
  Handle attr(SENSECF_H5_CHECK(H5Acreate2(obj, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT)),
              H5Aclose);
  SENSECF_H5_CHECK(H5Awrite(attr.get(), type.get(), value.c_str()));
}

// A string attribute, fixed-length or variable-length (as h5py writes them),
// holding one string: a scalar or a one-element array. `where` names the file
// and object in errors.
std::string read_string_attribute(hid_t obj, const std::string& name, const std::string& where) {
  Handle attr(SENSECF_H5_CHECK(H5Aopen(obj, name.c_str(), H5P_DEFAULT)), H5Aclose);
  Handle type(SENSECF_H5_CHECK(H5Aget_type(attr.get())), H5Tclose);
  Handle space(SENSECF_H5_CHECK(H5Aget_space(attr.get())), H5Sclose);
  const hssize_t n_values = SENSECF_H5_CHECK(H5Sget_simple_extent_npoints(space.get()));
  if (H5Tget_class(type.get()) != H5T_STRING || n_values != 1) {
    throw Error(fmt::format("{}: attribute '{}' is {}, expected one string", where, name,
                            H5Tget_class(type.get()) != H5T_STRING ? "not text" : fmt::format("{} values", n_values)),
                "the file is damaged or was edited; sensecf writes every attribute as one string");
  }
  if (H5Tis_variable_str(type.get()) > 0) {
    char* text = nullptr;
    Handle mem = Handle(SENSECF_H5_CHECK(H5Tcopy(H5T_C_S1)), H5Tclose);
    SENSECF_H5_CHECK(H5Tset_size(mem.get(), H5T_VARIABLE));
    // The file's character set (h5py writes UTF-8): HDF5 does not convert ASCII <-> UTF-8.
    SENSECF_H5_CHECK(H5Tset_cset(mem.get(), H5Tget_cset(type.get())));
    SENSECF_H5_CHECK(H5Aread(attr.get(), mem.get(), &text));
    std::string out = text ? text : "";
    H5free_memory(text);
    return out;
  }
  const std::size_t n = H5Tget_size(type.get());
  std::string buf(n, '\0');
  SENSECF_H5_CHECK(H5Aread(attr.get(), type.get(), buf.data()));
  return std::string(buf.c_str());
}
}  // namespace

void H5File::set_attribute(const std::string& name, const std::string& value) {
  write_string_attribute(id(), name, value);
}

bool H5File::has_attribute(const std::string& name) const { return H5Aexists(id(), name.c_str()) > 0; }

std::string H5File::attribute(const std::string& name) const {
  if (!has_attribute(name)) throw Error("'" + path_ + "' has no attribute '" + name + "'");
  return read_string_attribute(id(), name, "'" + path_ + "'");
}

bool H5File::exists(const std::string& object_path) const {
  // Check each prefix: H5Lexists fails on a missing intermediate group.
  std::size_t pos = 0;
  while ((pos = object_path.find('/', pos + 1)) != std::string::npos) {
    if (H5Lexists(id(), object_path.substr(0, pos).c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return H5Lexists(id(), object_path.c_str(), H5P_DEFAULT) > 0;
}

void H5File::flush() { SENSECF_H5_CHECK(H5Fflush(id(), H5F_SCOPE_GLOBAL)); }

void H5File::set_attribute(const std::string& object, const std::string& name, const std::string& value) {
  if (object == "/") return set_attribute(name, value);
  Handle obj(SENSECF_H5_CHECK(H5Oopen(id(), object.c_str(), H5P_DEFAULT)), H5Oclose);
  write_string_attribute(obj.get(), name, value);
}

bool H5File::has_attribute(const std::string& object, const std::string& name) const {
  if (object == "/") return has_attribute(name);
  if (!exists(object)) return false;
  Handle obj(SENSECF_H5_CHECK(H5Oopen(id(), object.c_str(), H5P_DEFAULT)), H5Oclose);
  return H5Aexists(obj.get(), name.c_str()) > 0;
}

std::string H5File::attribute(const std::string& object, const std::string& name) const {
  if (object == "/") return attribute(name);
  if (!exists(object)) throw Error("'" + path_ + "' has no object '" + object + "'");
  Handle obj(SENSECF_H5_CHECK(H5Oopen(id(), object.c_str(), H5P_DEFAULT)), H5Oclose);
  if (H5Aexists(obj.get(), name.c_str()) <= 0)
    throw Error("'" + path_ + "': " + object + " has no attribute '" + name + "'");
  return read_string_attribute(obj.get(), name, "'" + path_ + "': " + object);
}

namespace {
Handle intermediate_groups_plist() {
  Handle plist(SENSECF_H5_CHECK(H5Pcreate(H5P_LINK_CREATE)), H5Pclose);
  SENSECF_H5_CHECK(H5Pset_create_intermediate_group(plist.get(), 1));
  return plist;
}

void write_any(hid_t file, const std::string& path, hid_t file_type, hid_t mem_type, const void* data,
               const std::vector<std::size_t>& dims) {
  std::vector<hsize_t> h(dims.begin(), dims.end());
  Handle space(SENSECF_H5_CHECK(H5Screate_simple(static_cast<int>(h.size()), h.data(), nullptr)), H5Sclose);
  Handle lcpl = intermediate_groups_plist();
  std::size_t n = 1;
  for (auto d : dims) n *= d;
  // Chunked, with a Fletcher-32 checksum per chunk (a chunk cannot have a zero
  // dimension: empty arrays stay contiguous).
  Handle dcpl(SENSECF_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
  const bool variable_length = H5Tget_class(file_type) == H5T_VLEN || H5Tis_variable_str(file_type) > 0;
  if (n > 0 && !h.empty() && !variable_length) {  // HDF5 filters refuse variable-length data
    // Chunks stay below 64 MB (HDF5's limit is 4 GB): halve the first dimension.
    std::vector<hsize_t> chunk = h;
    const std::size_t bytes_per_element = H5Tget_size(file_type);
    while (chunk[0] > 1 && (n / h[0]) * chunk[0] * bytes_per_element > (std::size_t{64} << 20)) {
      chunk[0] = (chunk[0] + 1) / 2;
    }
    SENSECF_H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()));
    SENSECF_H5_CHECK(H5Pset_fletcher32(dcpl.get()));
  }
  Handle dset(SENSECF_H5_CHECK(H5Dcreate2(file, path.c_str(), file_type, space.get(), lcpl.get(), dcpl.get(),
                                          H5P_DEFAULT)),
              H5Dclose);
  if (n > 0) SENSECF_H5_CHECK(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
}

// The number of values in `space` (dims: its shape), refused before anything is
// allocated when they would take more than 1 GiB of `element_bytes` each: the
// arrays and tables of a results file are rows, not tensors, and a damaged or
// edited header can claim any shape (2^62 rows, or dims whose product wraps).
std::size_t checked_size(hid_t space, std::size_t element_bytes, const std::string& file, const std::string& path,
                         std::vector<hsize_t>* dims = nullptr) {
  constexpr std::size_t kMaxBytes = std::size_t{1} << 30;
  const int rank = SENSECF_H5_CHECK(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> h(static_cast<std::size_t>(rank));
  SENSECF_H5_CHECK(H5Sget_simple_extent_dims(space, h.data(), nullptr));
  if (dims) *dims = h;
  if (std::find(h.begin(), h.end(), hsize_t{0}) != h.end()) return 0;
  const std::size_t limit = kMaxBytes / std::max<std::size_t>(element_bytes, 1);
  std::size_t n = 1;
  for (auto d : h) {
    if (d > limit / n) {
      std::vector<std::string> parts;
      for (auto x : h) parts.push_back(std::to_string(x));
      throw Error(fmt::format("{}{} has shape [{}], more than the {} values of {} bytes a results file's arrays "
                              "hold",
                              file.empty() ? "" : "'" + file + "': ", path, join(parts, ", "), limit, element_bytes),
                  "the file is damaged or was edited; `h5dump -H` shows its shapes");
    }
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

template <class T>
std::vector<T> read_any(const H5File& f, const std::string& path, hid_t mem_type, std::vector<std::size_t>* dims) {
  if (!f.exists(path)) throw Error("'" + f.path() + "' has no dataset '" + path + "'");
  Handle dset(SENSECF_H5_CHECK(H5Dopen2(f.id(), path.c_str(), H5P_DEFAULT)), H5Dclose);
  Handle space(SENSECF_H5_CHECK(H5Dget_space(dset.get())), H5Sclose);
  std::vector<hsize_t> h;
  const std::size_t n = checked_size(space.get(), sizeof(T), f.path(), path, &h);
  std::vector<T> out(n);
  if (n > 0) SENSECF_H5_CHECK(H5Dread(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()));
  if (dims) dims->assign(h.begin(), h.end());
  return out;
}
}  // namespace

void H5File::write_array(const std::string& path, const std::vector<double>& values,
                         const std::vector<std::size_t>& dims) {
  write_any(id(), path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.data(), dims);
}

void H5File::write_array(const std::string& path, const std::vector<long long>& values,
                         const std::vector<std::size_t>& dims) {
  write_any(id(), path, H5T_STD_I64LE, H5T_NATIVE_LLONG, values.data(), dims);
}

std::vector<double> H5File::read_doubles(const std::string& path, std::vector<std::size_t>* dims) const {
  return read_any<double>(*this, path, H5T_NATIVE_DOUBLE, dims);
}

std::vector<long long> H5File::read_ints(const std::string& path, std::vector<std::size_t>* dims) const {
  return read_any<long long>(*this, path, H5T_NATIVE_LLONG, dims);
}

namespace {
Handle utf8_vlen_string_type() {
  Handle t(SENSECF_H5_CHECK(H5Tcopy(H5T_C_S1)), H5Tclose);
  SENSECF_H5_CHECK(H5Tset_size(t.get(), H5T_VARIABLE));
  SENSECF_H5_CHECK(H5Tset_cset(t.get(), H5T_CSET_UTF8));
  return t;
}
}  // namespace

void H5File::write_strings(const std::string& path, const std::vector<std::string>& values) {
  std::vector<const char*> pointers;
  pointers.reserve(values.size());
  for (const auto& v : values) pointers.push_back(v.c_str());
  Handle type = utf8_vlen_string_type();
  write_any(id(), path, type.get(), type.get(), pointers.data(), {values.size()});
}

std::vector<std::string> H5File::read_strings(const std::string& path) const {
  if (!exists(path)) throw Error("'" + path_ + "' has no dataset '" + path + "'");
  Handle dset(SENSECF_H5_CHECK(H5Dopen2(id(), path.c_str(), H5P_DEFAULT)), H5Dclose);
  Handle space(SENSECF_H5_CHECK(H5Dget_space(dset.get())), H5Sclose);
  Handle type(SENSECF_H5_CHECK(H5Dget_type(dset.get())), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) throw Error("'" + path_ + "': '" + path + "' is not a string dataset");
  const std::size_t n = checked_size(space.get(), std::max(H5Tget_size(type.get()), sizeof(char*)), path_, path);
  std::vector<std::string> out;
  out.reserve(n);
  if (n == 0) return out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem = utf8_vlen_string_type();
    std::vector<char*> text(n, nullptr);
    SENSECF_H5_CHECK(H5Dread(dset.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()));
    for (char* t : text) out.emplace_back(t ? t : "");
#if H5_VERSION_GE(1, 12, 0)
    SENSECF_H5_CHECK(H5Treclaim(mem.get(), space.get(), H5P_DEFAULT, text.data()));
#else
    SENSECF_H5_CHECK(H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, text.data()));
#endif
    return out;
  }
  const std::size_t width = H5Tget_size(type.get());
  std::vector<char> buf(n * width, '\0');
  SENSECF_H5_CHECK(H5Dread(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
  for (std::size_t i = 0; i < n; ++i) out.emplace_back(buf.data() + i * width, strnlen(buf.data() + i * width, width));
  return out;
}

std::vector<std::string> H5File::list(const std::string& group) const {
  std::vector<std::string> names;
  if (!exists(group) && group != "/") return names;
  Handle g(SENSECF_H5_CHECK(H5Gopen2(id(), group.c_str(), H5P_DEFAULT)), H5Gclose);
  H5G_info_t info;
  SENSECF_H5_CHECK(H5Gget_info(g.get(), &info));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = SENSECF_H5_CHECK(
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT));
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    SENSECF_H5_CHECK(H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                                        H5P_DEFAULT));
    name.resize(static_cast<std::size_t>(len));
    names.push_back(name);
  }
  return names;
}

// --- Table ----------------------------------------------------------------------

namespace {
struct Layout {
  Handle type;
  std::vector<std::size_t> offsets;
  std::size_t row_bytes = 0;
};

Layout make_layout(const std::vector<Column>& columns) {
  Layout l;
  for (const auto& c : columns) {
    l.offsets.push_back(l.row_bytes);
    l.row_bytes += c.type == ColumnType::kString ? c.length : 8;
  }
  l.type = Handle(SENSECF_H5_CHECK(H5Tcreate(H5T_COMPOUND, l.row_bytes)), H5Tclose);
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const auto& c = columns[i];
    if (c.type == ColumnType::kString) {
      Handle s = string_type(c.length);
      SENSECF_H5_CHECK(H5Tinsert(l.type.get(), c.name.c_str(), l.offsets[i], s.get()));
    } else {
      SENSECF_H5_CHECK(H5Tinsert(l.type.get(), c.name.c_str(), l.offsets[i],
                                 c.type == ColumnType::kInt64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE));
    }
  }
  return l;
}
}  // namespace

Table Table::create(H5File& file, const std::string& path, std::vector<Column> columns, std::size_t chunk_rows) {
  for (const auto& c : columns) {
    if (c.type == ColumnType::kString && c.length < 2) {
      throw Error("table '" + path + "': string column '" + c.name + "' needs a length >= 2");
    }
  }
  Table t;
  t.path_ = path;
  t.columns_ = std::move(columns);
  Layout l = make_layout(t.columns_);
  t.offsets_ = l.offsets;
  t.row_bytes_ = l.row_bytes;
  t.type_ = std::move(l.type);
  const hsize_t dims[1] = {0};
  const hsize_t max_dims[1] = {H5S_UNLIMITED};
  const hsize_t chunk[1] = {chunk_rows};
  Handle space(SENSECF_H5_CHECK(H5Screate_simple(1, dims, max_dims)), H5Sclose);
  Handle dcpl(SENSECF_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
  SENSECF_H5_CHECK(H5Pset_chunk(dcpl.get(), 1, chunk));
  SENSECF_H5_CHECK(H5Pset_fletcher32(dcpl.get()));  // a damaged chunk fails to read instead of reading wrong
  Handle lcpl(SENSECF_H5_CHECK(H5Pcreate(H5P_LINK_CREATE)), H5Pclose);
  SENSECF_H5_CHECK(H5Pset_create_intermediate_group(lcpl.get(), 1));
  t.dataset_ = Handle(SENSECF_H5_CHECK(H5Dcreate2(file.id(), path.c_str(), t.type_.get(), space.get(), lcpl.get(),
                                                  dcpl.get(), H5P_DEFAULT)),
                      H5Dclose);
  return t;
}

Table Table::open(H5File& file, const std::string& path) {
  if (!file.exists(path)) throw Error("'" + file.path() + "' has no table '" + path + "'");
  Table t;
  t.path_ = path;
  t.dataset_ = Handle(SENSECF_H5_CHECK(H5Dopen2(file.id(), path.c_str(), H5P_DEFAULT)), H5Dclose);
  Handle type(SENSECF_H5_CHECK(H5Dget_type(t.dataset_.get())), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_COMPOUND) {
    throw Error("'" + file.path() + "': '" + path + "' is not a table (an HDF5 compound dataset)",
                "the file was not written by `sensecf sweep`, or was edited; `h5dump -H` shows what it holds");
  }
  const int n = SENSECF_H5_CHECK(H5Tget_nmembers(type.get()));
  for (int i = 0; i < n; ++i) {
    char* name = H5Tget_member_name(type.get(), static_cast<unsigned>(i));
    Column c;
    c.name = name;
    H5free_memory(name);
    Handle mt(SENSECF_H5_CHECK(H5Tget_member_type(type.get(), static_cast<unsigned>(i))), H5Tclose);
    switch (H5Tget_class(mt.get())) {
      case H5T_STRING: c.type = ColumnType::kString; c.length = H5Tget_size(mt.get()); break;
      case H5T_INTEGER: c.type = ColumnType::kInt64; break;
      case H5T_FLOAT: c.type = ColumnType::kFloat64; break;
      default:
        throw Error("'" + file.path() + "': table '" + path + "': column '" + c.name +
                        "' is neither text, an integer nor a float",
                    "the file was not written by `sensecf sweep`, or was edited");
    }
    t.columns_.push_back(c);
  }
  Layout l = make_layout(t.columns_);
  t.offsets_ = l.offsets;
  t.row_bytes_ = l.row_bytes;
  t.type_ = std::move(l.type);
  return t;
}

std::size_t Table::size() const {
  Handle space(SENSECF_H5_CHECK(H5Dget_space(dataset_.get())), H5Sclose);
  hsize_t dims[1] = {0};
  SENSECF_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims, nullptr));
  return dims[0];
}

void Table::append(const std::vector<Row>& rows) {
  if (rows.empty()) return;
  std::vector<char> buf(rows.size() * row_bytes_, 0);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != columns_.size()) {
      throw Error(fmt::format("table '{}': row has {} values for {} columns", path_, rows[r].size(), columns_.size()));
    }
    char* base = buf.data() + r * row_bytes_;
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      const Column& col = columns_[c];
      const Value& v = rows[r][c];
      char* dst = base + offsets_[c];
      switch (col.type) {
        case ColumnType::kString: {
          const auto* s = std::get_if<std::string>(&v);
          if (!s) throw Error(fmt::format("table '{}': column '{}' expects text", path_, col.name));
          if (s->size() + 1 > col.length) {
            throw Error(fmt::format("table '{}': value of {} bytes does not fit column '{}' ({} bytes)", path_,
                                    s->size(), col.name, col.length - 1));
          }
          std::memcpy(dst, s->data(), s->size());
          break;
        }
        case ColumnType::kInt64: {
          const auto* i = std::get_if<long long>(&v);
          if (!i) throw Error(fmt::format("table '{}': column '{}' expects an integer", path_, col.name));
          const std::int64_t x = *i;
          std::memcpy(dst, &x, 8);
          break;
        }
        case ColumnType::kFloat64: {
          double x = 0;
          if (const auto* d = std::get_if<double>(&v)) {
            x = *d;
          } else if (const auto* i = std::get_if<long long>(&v)) {
            x = static_cast<double>(*i);
          } else {
            throw Error(fmt::format("table '{}': column '{}' expects a number", path_, col.name));
          }
          std::memcpy(dst, &x, 8);
          break;
        }
      }
    }
  }
  const hsize_t old_n = size();
  const hsize_t new_dims[1] = {old_n + rows.size()};
  SENSECF_H5_CHECK(H5Dset_extent(dataset_.get(), new_dims));
  Handle file_space(SENSECF_H5_CHECK(H5Dget_space(dataset_.get())), H5Sclose);
  const hsize_t start[1] = {old_n};
  const hsize_t count[1] = {rows.size()};
  SENSECF_H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr));
  Handle mem_space(SENSECF_H5_CHECK(H5Screate_simple(1, count, nullptr)), H5Sclose);
  SENSECF_H5_CHECK(H5Dwrite(dataset_.get(), type_.get(), mem_space.get(), file_space.get(), H5P_DEFAULT, buf.data()));
}

std::vector<Row> Table::read() const {
  Handle space(SENSECF_H5_CHECK(H5Dget_space(dataset_.get())), H5Sclose);
  const std::size_t n = checked_size(space.get(), row_bytes_, "", path_);  // read_results names the file
  std::vector<Row> rows;
  if (n == 0) return rows;
  std::vector<char> buf(n * row_bytes_);
  SENSECF_H5_CHECK(H5Dread(dataset_.get(), type_.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
  rows.reserve(n);
  for (std::size_t r = 0; r < n; ++r) {
    const char* base = buf.data() + r * row_bytes_;
    Row row;
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      const char* src = base + offsets_[c];
      switch (columns_[c].type) {
        case ColumnType::kString: row.emplace_back(std::string(src, strnlen(src, columns_[c].length))); break;
        case ColumnType::kInt64: {
          std::int64_t x;
          std::memcpy(&x, src, 8);
          row.emplace_back(static_cast<long long>(x));
          break;
        }
        case ColumnType::kFloat64: {
          double x;
          std::memcpy(&x, src, 8);
          row.emplace_back(x);
          break;
        }
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace sensecf::store
