// torch.save archives (see torch_bin.h): the ZIP reader, the archive check
// around data.pkl (the unpickler is torch_pickle.cpp), the mmap reader and a
// writer for tests and benchmarks. Depends only on the standard library,
// mapped_file.cpp and safetensors.cpp, so the fuzz target can build it alone.
#include "sensecf/llm/io/torch_bin.h"

#include <cstdint>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::llm {
namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kLocalHeaderSig = 0x04034b50;
constexpr std::uint32_t kCentralHeaderSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kZip64EndSig = 0x06064b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20;
constexpr std::size_t kCentralHeaderSize = 46, kLocalHeaderSize = 30;
constexpr std::uint32_t kZip64Marker32 = 0xffffffff;
constexpr std::uint16_t kZip64Marker16 = 0xffff;
constexpr std::size_t kAlignment = 64;  // torch aligns storages to 64 bytes

std::uint64_t le(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint16_t u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(le(p, 2)); }
std::uint32_t u32(const std::uint8_t* p) { return static_cast<std::uint32_t>(le(p, 4)); }
std::uint64_t u64(const std::uint8_t* p) { return le(p, 8); }

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

[[noreturn]] void fail(const std::string& source, const std::string& what, const std::string& hint = {}) {
  throw Error(source + ": " + what, hint);
}

// The ZIP64 extended-information extra field (tag 0x0001) of a central header:
// the 64-bit values of whichever of the 32-bit fields hold 0xffffffff, in order.
void read_zip64_extra(const std::uint8_t* extra, std::size_t n, std::uint64_t& uncompressed,
                      std::uint64_t& compressed, std::uint64_t& offset, const std::string& source,
                      const std::string& name) {
  std::size_t pos = 0;
  while (n - pos >= 4) {
    const std::uint16_t tag = u16(extra + pos), size = u16(extra + pos + 2);
    if (size > n - pos - 4) fail(source, "zip entry " + in_quotes(name) + " has a truncated extra field");
    if (tag == 0x0001) {
      std::size_t field = pos + 4;
      const std::size_t end = field + size;
      for (std::uint64_t* value : {&uncompressed, &compressed, &offset}) {
        if (*value != kZip64Marker32) continue;
        if (end - field < 8)
          fail(source, "zip entry " + in_quotes(name) + " has a truncated ZIP64 extra field");
        *value = u64(extra + field);
        field += 8;
      }
    }
    pos += 4 + size;
  }
}

// The bytes of a STORED entry; a compressed one is refused, naming it.
ByteSpan entry_bytes(const std::uint8_t* bytes, const ZipEntry& e, const std::string& source) {
  if (e.method != 0) {
    fail(source,
         "zip entry " + in_quotes(e.name) + " is compressed (method " + std::to_string(e.method) +
             "); torch.save stores every entry uncompressed, so the archive was re-packed by another tool",
         "load it in Python and save it again with torch.save (or re-pack it with `zip -0`)");
  }
  return {bytes + e.data_offset, static_cast<std::size_t>(e.size)};
}

// The pickled magic number 0x1950a86a20f9469cfc6c with which the legacy format
// begins: PROTO 2, LONG1 of 10 bytes.
constexpr std::uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                         0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

}  // namespace

// --- ZIP ------------------------------------------------------------------------

std::vector<ZipEntry> read_zip_entries(const std::uint8_t* bytes, std::size_t n, const std::string& source) {
  if (n < kEndSize) {
    fail(source, "file is " + std::to_string(n) +
                     " bytes, too short for a ZIP archive (its end-of-central-directory record alone is 22)");
  }
  // The end record: the last 22 bytes, or earlier when followed by a comment.
  std::size_t end = n;
  const std::size_t lowest = n - kEndSize > 0xffff ? n - kEndSize - 0xffff : 0;
  for (std::size_t pos = n - kEndSize + 1; pos-- > lowest;) {
    if (u32(bytes + pos) == kEndSig && pos + kEndSize + u16(bytes + pos + 20) == n) {
      end = pos;
      break;
    }
  }
  if (end == n) {
    if (u32(bytes) == kLocalHeaderSig) {
      fail(source, "ZIP archive without its end-of-central-directory record: the file is truncated",
           "the download or copy was incomplete; fetch the file again");
    }
    fail(source, "not a ZIP archive (no end-of-central-directory record)");
  }
  const std::uint8_t* e = bytes + end;
  if ((u16(e + 4) != 0 && u16(e + 4) != kZip64Marker16) ||
      (u16(e + 6) != 0 && u16(e + 6) != kZip64Marker16)) {
    fail(source, "multi-disk (split) ZIP archives are not supported");
  }
  std::uint64_t n_entries = u16(e + 10), cd_size = u32(e + 12), cd_offset = u32(e + 16);
  std::uint64_t cd_limit = end;  // the central directory ends at or before this offset
  if (end >= kZip64LocatorSize && u32(bytes + end - kZip64LocatorSize) == kZip64LocatorSig) {
    const std::uint64_t locator = end - kZip64LocatorSize;
    const std::uint64_t record = u64(bytes + locator + 8);
    if (record > locator || locator - record < kZip64EndSize) {
      fail(source, "the ZIP64 end-of-central-directory record offset " + std::to_string(record) +
                       " is outside the file (truncated or corrupt archive)");
    }
    const std::uint8_t* z = bytes + record;
    if (u32(z) != kZip64EndSig) {
      fail(source, "no ZIP64 end-of-central-directory record at offset " + std::to_string(record) +
                       " (corrupt archive)");
    }
    n_entries = u64(z + 32);
    cd_size = u64(z + 40);
    cd_offset = u64(z + 48);
    cd_limit = record;
  } else if (n_entries == kZip64Marker16 || cd_size == kZip64Marker32 || cd_offset == kZip64Marker32) {
    fail(source, "the end-of-central-directory record needs ZIP64 values, but the ZIP64 locator is missing");
  }
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset) {
    fail(source, "the central directory (" + std::to_string(cd_size) + " bytes at offset " +
                     std::to_string(cd_offset) + ") reaches past its end record at " +
                     std::to_string(cd_limit) + " (truncated or corrupt archive)");
  }
  if (n_entries > cd_size / kCentralHeaderSize) {
    fail(source, "the central directory claims " + std::to_string(n_entries) + " entries but has only " +
                     std::to_string(cd_size) + " bytes (truncated or corrupt archive)");
  }

  std::vector<ZipEntry> entries;
  std::set<std::string> names;
  std::uint64_t pos = cd_offset;
  const std::uint64_t cd_end = cd_offset + cd_size;
  for (std::uint64_t i = 0; i < n_entries; ++i) {
    const std::string at =
        "central directory entry " + std::to_string(i) + " at offset " + std::to_string(pos);
    if (cd_end - pos < kCentralHeaderSize) fail(source, at + " is truncated");
    const std::uint8_t* c = bytes + pos;
    if (u32(c) != kCentralHeaderSig) fail(source, at + " has no central header signature (corrupt archive)");
    const std::uint16_t flags = u16(c + 8), method = u16(c + 10);
    std::uint64_t compressed = u32(c + 20), uncompressed = u32(c + 24), local = u32(c + 42);
    const std::size_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    if (cd_end - pos - kCentralHeaderSize < name_len + extra_len + comment_len) {
      fail(source, at + " is truncated (its name and extra fields reach past the central directory)");
    }
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(c + kCentralHeaderSize), name_len);
    entry.method = method;
    const std::string named = "zip entry " + in_quotes(entry.name);
    read_zip64_extra(c + kCentralHeaderSize + name_len, extra_len, uncompressed, compressed, local, source,
                     entry.name);
    if (flags & 0x1) fail(source, named + " is encrypted");
    if (compressed == kZip64Marker32 || uncompressed == kZip64Marker32 || local == kZip64Marker32) {
      fail(source, named + " needs a ZIP64 extra field, which is missing (corrupt archive)");
    }
    if (method == 0 && compressed != uncompressed) {
      fail(source, named + " is stored but its sizes differ (" + std::to_string(compressed) + " and " +
                       std::to_string(uncompressed) + " bytes; corrupt archive)");
    }
    if (local > n || n - local < kLocalHeaderSize) {
      fail(source, named + ": its local header at offset " + std::to_string(local) +
                       " is outside the file (truncated archive)");
    }
    const std::uint8_t* l = bytes + local;
    if (u32(l) != kLocalHeaderSig) {
      fail(source,
           named + ": no local header signature at offset " + std::to_string(local) + " (corrupt archive)");
    }
    const std::uint64_t data = local + kLocalHeaderSize + u16(l + 26) + u16(l + 28);
    if (data > n || u16(l + 26) != name_len ||
        std::memcmp(l + kLocalHeaderSize, entry.name.data(), name_len) != 0) {
      fail(source, named + ": its local header does not match the central directory (corrupt archive)");
    }
    if (compressed > n - data) {
      fail(source, named + ": its " + std::to_string(compressed) + " bytes at offset " +
                       std::to_string(data) + " run past the end of the file (" + std::to_string(n) +
                       " bytes; truncated archive)");
    }
    entry.data_offset = data;
    entry.size = compressed;
    if (!names.insert(entry.name).second) fail(source, "the archive holds " + named + " twice");
    entries.push_back(std::move(entry));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
  return entries;
}

// --- the archive ------------------------------------------------------------------

namespace {
struct StorageName {
  Dtype dtype;
  const char* name;
};
constexpr StorageName kStorageNames[] = {
    {Dtype::kF32, "FloatStorage"},  {Dtype::kF16, "HalfStorage"}, {Dtype::kBF16, "BFloat16Storage"},
    {Dtype::kF64, "DoubleStorage"}, {Dtype::kI64, "LongStorage"}, {Dtype::kI32, "IntStorage"},
    {Dtype::kI16, "ShortStorage"},  {Dtype::kI8, "CharStorage"},  {Dtype::kU8, "ByteStorage"},
    {Dtype::kBool, "BoolStorage"},
};
}  // namespace

const char* torch_storage_name(Dtype dtype) {
  for (const auto& s : kStorageNames)
    if (s.dtype == dtype) return s.name;
  return nullptr;
}

std::optional<Dtype> parse_torch_storage_name(std::string_view name) {
  for (const auto& s : kStorageNames)
    if (name == s.name) return s.dtype;
  return std::nullopt;
}

std::uint64_t TorchTensorInfo::numel() const {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

bool TorchTensorInfo::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

const TorchTensorInfo* TorchStateDict::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

bool is_legacy_torch_save(const std::uint8_t* bytes, std::size_t n_bytes) {
  return n_bytes >= sizeof kLegacyMagic && std::memcmp(bytes, kLegacyMagic, sizeof kLegacyMagic) == 0;
}

TorchArchive parse_torch_archive(const std::uint8_t* bytes, std::size_t n, const std::string& source) {
  if (is_legacy_torch_save(bytes, n)) {
    fail(source,
         "written in torch.save's legacy format (PyTorch < 1.6, or _use_new_zipfile_serialization=False); "
         "sensecf reads the zip format torch.save has written since 1.6",
         "re-save it once: python -c \"import torch; torch.save(torch.load('" + source +
             "', map_location='cpu'), '" + source + "')\"");
  }
  if (n >= 4 && u32(bytes) != kLocalHeaderSig && u32(bytes) != kEndSig) {
    char first[32];
    std::snprintf(first, sizeof first, "%02x %02x %02x %02x", bytes[0], bytes[1], bytes[2], bytes[3]);
    std::string hint;
    if (n >= 9 && bytes[8] == '{') hint = "it looks like a safetensors file; name it model.safetensors";
    if (bytes[0] == 0x80) hint = "it looks like a bare pickle, not torch.save's zip archive";
    fail(source,
         std::string("not a torch.save archive: it begins with bytes ") + first +
             ", not a ZIP signature (50 4b 03 04)",
         hint);
  }
  const std::vector<ZipEntry> entries = read_zip_entries(bytes, n, source);
  std::map<std::string, const ZipEntry*> by_name;
  for (const auto& e : entries) by_name.emplace(e.name, &e);

  TorchArchive archive;
  std::vector<std::string> pickles;
  for (const auto& e : entries) {
    const auto slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      pickles.push_back(e.name);
    }
  }
  if (pickles.size() != 1) {
    std::string listed;
    for (std::size_t i = 0; i < entries.size() && i < 5; ++i) listed += (i ? ", " : "") + entries[i].name;
    if (entries.size() > 5) listed += ", ...";
    if (pickles.empty()) {
      fail(source, "no <prefix>/data.pkl in the archive (entries: " + (listed.empty() ? "none" : listed) +
                       "); not a torch.save archive");
    }
    fail(source, "the archive holds " + std::to_string(pickles.size()) + " data.pkl files (" + pickles[0] +
                     ", " + pickles[1] + "); a torch.save archive has one");
  }
  archive.prefix = pickles[0].substr(0, pickles[0].size() - 9);
  const std::string p = archive.prefix + "/";
  for (const auto& e : entries) {
    if (e.name == p + "constants.pkl" || starts_with(e.name, p + "code/")) {
      fail(source, "a TorchScript archive (torch.jit.save), not a torch.save state dict",
           "save the model's weights with torch.save(model.state_dict(), 'pytorch_model.bin')");
    }
  }
  if (const auto it = by_name.find(p + "byteorder"); it != by_name.end()) {
    const ByteSpan b = entry_bytes(bytes, *it->second, source);
    const std::string order(reinterpret_cast<const char*>(b.data), b.size);
    if (order == "big") {
      fail(source,
           "written on a big-endian machine (" + p + "byteorder is 'big'); sensecf reads little-endian data",
           "load and re-save it with torch.save on a little-endian (x86, ARM) machine");
    }
    if (order != "little")
      fail(source, p + "byteorder is " + in_quotes(order.substr(0, 20)) + ", not 'little'");
  }
  const ByteSpan pickle = entry_bytes(bytes, *by_name.at(pickles[0]), source);
  archive.state = parse_state_dict_pickle(pickle.data, pickle.size, source);

  for (const auto& [key, storage] : archive.state.storages) {
    std::string user;
    for (const auto& t : archive.state.tensors) {
      if (t.storage_key == key) {
        user = t.name;
        break;
      }
    }
    const std::string entry_name = p + "data/" + key;
    const auto it = by_name.find(entry_name);
    if (it == by_name.end()) {
      fail(source, "storage " + in_quotes(key) + " (of tensor " + in_quotes(user) + ") has no entry " +
                       in_quotes(entry_name) + " in the archive (truncated or hand-edited archive?)");
    }
    entry_bytes(bytes, *it->second, source);  // refuses compressed storages
    if (it->second->size != storage.n_bytes()) {
      fail(source, "zip entry " + in_quotes(entry_name) + " has " + std::to_string(it->second->size) +
                       " bytes but storage " + in_quotes(key) + " (of tensor " + in_quotes(user) + ") is " +
                       dtype_name(storage.dtype) + " × " + std::to_string(storage.numel) + " = " +
                       std::to_string(storage.n_bytes()) + " bytes");
    }
    archive.storage_entries.emplace(key, *it->second);
  }
  return archive;
}

// --- mapped file ------------------------------------------------------------------

TorchBinFile TorchBinFile::open(const std::string& path) {
  TorchBinFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path);
  if (f.file_.size() == 0) fail(path, "file is empty (an interrupted download?)");
  f.archive_ = parse_torch_archive(f.file_.data(), f.file_.size(), path);
  return f;
}

const TorchTensorInfo& TorchBinFile::tensor(const std::string& name) const {
  const TorchTensorInfo* t = archive_.state.find(name);
  if (!t)
    throw Error(path_ + ": no tensor " + in_quotes(name),
                "is the file complete, and from the same model as config.json?");
  return *t;
}

ByteSpan TorchBinFile::storage(const TorchTensorInfo& tensor) const {
  const ZipEntry& e = archive_.storage_entries.at(tensor.storage_key);
  return {file_.data() + e.data_offset, static_cast<std::size_t>(e.size)};
}

// --- writer -----------------------------------------------------------------------

namespace {

std::uint32_t crc32(const std::uint8_t* data, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

void put(std::string& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Protocol-2 opcodes, as Python's pickler writes them for these values.
struct PickleWriter {
  std::string out = "\x80\x02";
  void global(const std::string& module, const std::string& name) {
    out += "c" + module + "\n" + name + "\n";
  }
  void str(const std::string& s) {
    out += 'X';
    put(out, s.size(), 4);
    out += s;
  }
  void integer(std::uint64_t v) {
    if (v < 0x100) {
      out += 'K';
      put(out, v, 1);
    } else if (v < 0x10000) {
      out += 'M';
      put(out, v, 2);
    } else if (v < 0x80000000u) {
      out += 'J';
      put(out, v, 4);
    } else {
      out += "\x8a\x08";  // LONG1, 8 bytes (values here are < 2^63)
      put(out, v, 8);
    }
  }
  void int_tuple(const std::vector<std::int64_t>& v) {
    out += '(';
    for (auto x : v) integer(static_cast<std::uint64_t>(x));
    out += 't';
  }
};

std::string state_dict_pickle(const std::map<std::string, TensorData>& tensors) {
  PickleWriter w;
  w.global("collections", "OrderedDict");
  w.out += ")R(";  // OrderedDict(), MARK
  std::size_t key = 0;
  for (const auto& [name, t] : tensors) {
    const char* type = torch_storage_name(t.dtype);
    if (!type)
      throw Error("write_torch_bin: tensor " + in_quotes(name) + " has dtype " + dtype_name(t.dtype) +
                  ", which has no torch storage type");
    std::vector<std::int64_t> stride(t.shape.size());
    std::int64_t numel = 1;
    for (std::size_t d = t.shape.size(); d-- > 0;) {
      stride[d] = numel;
      numel *= t.shape[d];
    }
    if (static_cast<std::uint64_t>(numel) * dtype_size(t.dtype) != t.n_bytes) {
      throw Error("write_torch_bin: tensor " + in_quotes(name) + " has " + std::to_string(t.n_bytes) +
                  " bytes but its shape and dtype need " +
                  std::to_string(static_cast<std::uint64_t>(numel) * dtype_size(t.dtype)));
    }
    w.str(name);
    w.global("torch._utils", "_rebuild_tensor_v2");
    w.out += "((";  // MARK args, MARK persistent id
    w.str("storage");
    w.global("torch", type);
    w.str(std::to_string(key++));
    w.str("cpu");
    w.integer(static_cast<std::uint64_t>(numel));
    w.out += "tQ";  // TUPLE, BINPERSID
    w.integer(0);   // storage_offset
    w.int_tuple(t.shape);
    w.int_tuple(stride);
    w.out += '\x89';  // requires_grad = False
    w.global("collections", "OrderedDict");
    w.out += ")Rt";  // backward_hooks = OrderedDict(); TUPLE of the arguments
    w.out += 'R';    // REDUCE
  }
  w.out += "u.";  // SETITEMS, STOP
  return w.out;
}

}  // namespace

void write_torch_bin(const std::string& path, const std::map<std::string, TensorData>& tensors, bool zip64) {
  std::string prefix = fs::path(path).stem().string();
  if (prefix.empty()) prefix = "archive";
  struct Record {
    std::string name;
    const std::uint8_t* data;
    std::size_t size;
  };
  const std::string pickle = state_dict_pickle(tensors);
  const std::string byteorder = "little", version = "3\n";
  std::vector<Record> records = {
      {prefix + "/data.pkl", reinterpret_cast<const std::uint8_t*>(pickle.data()), pickle.size()},
      {prefix + "/byteorder", reinterpret_cast<const std::uint8_t*>(byteorder.data()), byteorder.size()}};
  std::size_t key = 0;
  std::uint64_t total = pickle.size();
  for (const auto& [name, t] : tensors) {
    records.push_back(
        {prefix + "/data/" + std::to_string(key++), static_cast<const std::uint8_t*>(t.data), t.n_bytes});
    total += t.n_bytes + kAlignment + 256;
  }
  records.push_back(
      {prefix + "/version", reinterpret_cast<const std::uint8_t*>(version.data()), version.size()});
  zip64 = zip64 || total >= kZip64Marker32 || records.size() >= kZip64Marker16;

  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(MappedFile::system_error("cannot create", tmp), "is the directory writable?");
  std::uint64_t offset = 0;
  std::string central;
  for (const auto& r : records) {
    const std::uint32_t crc = crc32(r.data, r.size);
    std::string local;
    put(local, kLocalHeaderSig, 4);
    put(local, zip64 ? 45 : 20, 2);  // version needed
    put(local, 0, 2);                // flags
    put(local, 0, 2);                // method: STORED
    put(local, 0, 2);                // time
    put(local, 0x21, 2);             // date: 1980-01-01
    put(local, crc, 4);
    put(local, zip64 ? kZip64Marker32 : r.size, 4);
    put(local, zip64 ? kZip64Marker32 : r.size, 4);
    put(local, r.name.size(), 2);
    std::string extra;
    if (zip64) {
      put(extra, 0x0001, 2);
      put(extra, 16, 2);
      put(extra, r.size, 8);
      put(extra, r.size, 8);
    }
    // torch's padding field ("FB") so that the data starts 64-byte aligned.
    const std::size_t unpadded = offset + local.size() + 2 + r.name.size() + extra.size();
    std::size_t pad = (kAlignment - (unpadded + 4) % kAlignment) % kAlignment;
    put(extra, 0x4246, 2);
    put(extra, pad, 2);
    extra.append(pad, 'Z');
    put(local, extra.size(), 2);
    local += r.name + extra;
    out.write(local.data(), static_cast<std::streamsize>(local.size()));
    if (r.size) out.write(reinterpret_cast<const char*>(r.data), static_cast<std::streamsize>(r.size));

    put(central, kCentralHeaderSig, 4);
    put(central, zip64 ? 45 : 20, 2);  // version made by
    put(central, zip64 ? 45 : 20, 2);  // version needed
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0x21, 2);
    put(central, crc, 4);
    put(central, zip64 ? kZip64Marker32 : r.size, 4);
    put(central, zip64 ? kZip64Marker32 : r.size, 4);
    put(central, r.name.size(), 2);
    put(central, zip64 ? 28 : 0, 2);  // extra length
    put(central, 0, 2);               // comment length
    put(central, 0, 2);               // disk
    put(central, 0, 2);               // internal attributes
    put(central, 0, 4);               // external attributes
    put(central, zip64 ? kZip64Marker32 : offset, 4);
    central += r.name;
    if (zip64) {
      put(central, 0x0001, 2);
      put(central, 24, 2);
      put(central, r.size, 8);
      put(central, r.size, 8);
      put(central, offset, 8);
    }
    offset += local.size() + r.size;
  }
  const std::uint64_t cd_offset = offset;
  std::string tail = central;
  if (zip64) {
    const std::uint64_t record = cd_offset + central.size();
    put(tail, kZip64EndSig, 4);
    put(tail, kZip64EndSize - 12, 8);  // size of the rest of the record
    put(tail, 45, 2);
    put(tail, 45, 2);
    put(tail, 0, 4);
    put(tail, 0, 4);
    put(tail, records.size(), 8);
    put(tail, records.size(), 8);
    put(tail, central.size(), 8);
    put(tail, cd_offset, 8);
    put(tail, kZip64LocatorSig, 4);
    put(tail, 0, 4);
    put(tail, record, 8);
    put(tail, 1, 4);
  }
  put(tail, kEndSig, 4);
  put(tail, 0, 2);
  put(tail, 0, 2);
  put(tail, zip64 ? kZip64Marker16 : records.size(), 2);
  put(tail, zip64 ? kZip64Marker16 : records.size(), 2);
  put(tail, zip64 ? kZip64Marker32 : central.size(), 4);
  put(tail, zip64 ? kZip64Marker32 : cd_offset, 4);
  put(tail, 0, 2);
  out.write(tail.data(), static_cast<std::streamsize>(tail.size()));
  out.flush();
  if (!out) throw Error(MappedFile::system_error("cannot write", tmp), "is the disk full?");
  out.close();
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    throw Error("cannot rename " + tmp + " to " + path + ": " + ec.message(), "is the directory writable?");
}

}  // namespace sensecf::llm
