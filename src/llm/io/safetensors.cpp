// safetensors header parser/validator, mmap reader, writer and the sharded
// index's JSON (see safetensors.h). Depends only on the standard library,
// POSIX mmap and nlohmann::json, so the fuzz target can build it alone.
#include "sensecf/llm/io/safetensors.h"


#include <cstdint>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "sensecf/core/error.h"
#include "json_show.h"

namespace sensecf::llm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  std::size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {Dtype::kBool, "BOOL", 1},      {Dtype::kU8, "U8", 1},          {Dtype::kI8, "I8", 1},
    {Dtype::kF8E5M2, "F8_E5M2", 1}, {Dtype::kF8E4M3, "F8_E4M3", 1}, {Dtype::kI16, "I16", 2},
    {Dtype::kU16, "U16", 2},        {Dtype::kF16, "F16", 2},        {Dtype::kBF16, "BF16", 2},
    {Dtype::kI32, "I32", 4},        {Dtype::kU32, "U32", 4},        {Dtype::kF32, "F32", 4},
    {Dtype::kF64, "F64", 8},        {Dtype::kI64, "I64", 8},        {Dtype::kU64, "U64", 8},
};

std::string dtype_list() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

std::string show(const json& v) { return detail::json_show(v); }

[[noreturn]] void fail(const std::string& source, const std::string& what, const std::string& hint = {}) {
  throw Error(source + ": " + what, hint);
}

[[noreturn]] void fail_tensor(const std::string& source, const std::string& name, const std::string& what) {
  throw Error(
      source + ": tensor " + in_quotes(name) + ": " + what,
      "the header is damaged or not from a safetensors writer; download or convert the checkpoint again");
}

// Parses JSON text; the names of object keys repeated at `depth` (1 = keys of
// the top-level object; with `parent`, keys of the object under that top-level
// key) are collected in `duplicates`. nlohmann keeps the last value of a
// repeated key silently, so this is the only place to see them.
json parse_json(std::string_view text, const std::string& source, const std::string& what,
                std::vector<std::string>& duplicates, const std::string& parent = {}) {
  std::set<std::string> seen;
  std::string top_key;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event != json::parse_event_t::key || !parsed.is_string()) return true;
    const auto& key = parsed.get_ref<const std::string&>();
    if (depth == 1) top_key = key;
    const bool watched = parent.empty() ? depth == 1 : (depth == 2 && top_key == parent);
    if (watched && !seen.insert(key).second) duplicates.push_back(key);
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail(source, what + " is not valid JSON: " + e.what());
  }
}

std::uint64_t read_u64_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}


}  // namespace

std::size_t dtype_size(Dtype dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

const char* dtype_name(Dtype dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

std::optional<Dtype> parse_dtype_name(std::string_view name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

std::uint64_t TensorInfo::numel() const {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

const TensorInfo* Header::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Header parse_header(const std::uint8_t* bytes, std::size_t n_bytes, std::uint64_t file_size,
                    const std::string& source) {
  if (file_size < 8 || n_bytes < 8) {
    fail(source, "file is " + std::to_string(file_size) +
                     " bytes; a safetensors file starts with an 8-byte header length (truncated file?)");
  }
  Header h;
  h.header_size = read_u64_le(bytes);
  const std::uint64_t n = h.header_size;
  if (n < 2)
    fail(source, "header length is " + std::to_string(n) + "; the JSON header needs at least 2 bytes ({})");
  if (n > kMaxHeaderSize) {
    fail(source, "header length is " + std::to_string(n) + " bytes, more than the limit of " +
                     std::to_string(kMaxHeaderSize) + " (not a safetensors file?)");
  }
  if (8 + n > file_size) {
    fail(source, "header length is " + std::to_string(n) + " bytes but the file has only " +
                     std::to_string(file_size - 8) + " bytes after the length (truncated file?)");
  }
  if (8 + n > n_bytes) fail(source, "parse_header was given fewer bytes than the header needs");
  h.data_start = 8 + n;
  h.buffer_size = file_size - h.data_start;

  const std::string_view text(reinterpret_cast<const char*>(bytes + 8), static_cast<std::size_t>(n));
  std::vector<std::string> duplicates;
  const json j = parse_json(text, source, "header", duplicates);
  if (!j.is_object()) fail(source, "header is not a JSON object (found " + std::string(j.type_name()) + ")");
  if (!duplicates.empty()) fail(source, "header names " + in_quotes(duplicates.front()) + " twice");

  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        fail(source, "__metadata__ must be an object of strings, found " + std::string(entry.type_name()));
      }
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          fail(source, "__metadata__[" + in_quotes(key) + "] must be a string, found " + show(value));
        }
        h.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail_tensor(source, name, "entry must be an object, found " + show(entry));
    TensorInfo t;
    t.name = name;

    const auto dtype = entry.find("dtype");
    if (dtype == entry.end()) fail_tensor(source, name, "no 'dtype'");
    if (!dtype->is_string()) fail_tensor(source, name, "'dtype' must be a string, found " + show(*dtype));
    const auto parsed = parse_dtype_name(dtype->get_ref<const std::string&>());
    if (!parsed) {
      fail_tensor(source, name, "unknown dtype " + show(*dtype) + "; expected one of " + dtype_list());
    }
    t.dtype = *parsed;

    const auto shape = entry.find("shape");
    if (shape == entry.end()) fail_tensor(source, name, "no 'shape'");
    if (!shape->is_array()) fail_tensor(source, name, "'shape' must be an array, found " + show(*shape));
    std::uint64_t numel = 1;
    bool overflow = false;
    for (std::size_t i = 0; i < shape->size(); ++i) {
      const json& d = (*shape)[i];
      if (!d.is_number_unsigned() ||
          d.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail_tensor(
            source, name,
            "shape[" + std::to_string(i) + "] is " + show(d) + "; dimensions must be non-negative integers");
      }
      const auto dim = d.get<std::uint64_t>();
      t.shape.push_back(static_cast<std::int64_t>(dim));
      overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
    }
    std::uint64_t expected_bytes = 0;
    overflow = overflow || __builtin_mul_overflow(numel, dtype_size(t.dtype), &expected_bytes);
    if (overflow) fail_tensor(source, name, "shape " + show(*shape) + " has more bytes than fit in 64 bits");

    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end()) fail_tensor(source, name, "no 'data_offsets'");
    if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned()) {
      fail_tensor(source, name,
                  "'data_offsets' must be [begin, end] with non-negative integers, found " + show(*offsets));
    }
    t.begin = (*offsets)[0].get<std::uint64_t>();
    t.end = (*offsets)[1].get<std::uint64_t>();
    if (t.begin > t.end) fail_tensor(source, name, "data_offsets " + show(*offsets) + " has begin > end");
    if (t.end > h.buffer_size) {
      fail_tensor(source, name,
                  "data_offsets " + show(*offsets) + " end beyond the data buffer (" +
                      std::to_string(h.buffer_size) + " bytes; truncated file?)");
    }
    if (t.end - t.begin != expected_bytes) {
      fail_tensor(source, name,
                  "data_offsets " + show(*offsets) + " span " + std::to_string(t.end - t.begin) +
                      " bytes but " + dtype_name(t.dtype) + " shape " + show(*shape) + " needs " +
                      std::to_string(expected_bytes));
    }
    h.tensors.push_back(std::move(t));
  }

  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  std::uint64_t expected = 0;
  const TensorInfo* previous = nullptr;
  for (const auto& t : h.tensors) {
    if (t.begin < expected) {
      fail_tensor(source, t.name,
                  "bytes [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") overlap tensor " +
                      in_quotes(previous->name) + " (which ends at " + std::to_string(expected) + ")");
    }
    if (t.begin > expected) {
      fail_tensor(source, t.name,
                  "begins at byte " + std::to_string(t.begin) + " but the previous tensor ends at " +
                      std::to_string(expected) + "; the tensors must cover the data buffer without gaps");
    }
    expected = t.end;
    previous = &t;
  }
  if (expected != h.buffer_size) {
    fail(source, "the tensors cover " + std::to_string(expected) + " bytes of the " +
                     std::to_string(h.buffer_size) + "-byte data buffer; the rest belongs to no tensor");
  }
  return h;
}

// --- reader -----------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path);
  const auto size = static_cast<std::uint64_t>(f.file_.size());
  if (size < 8) {
    fail(path, "file is " + std::to_string(size) +
                   " bytes; a safetensors file starts with an 8-byte header length (truncated file?)");
  }
  f.header_ = parse_header(f.file_.data(), f.file_.size(), size, path);
  return f;
}

TensorView SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo* info = header_.find(name);
  if (!info)
    throw Error(
        path_ + ": no tensor " + in_quotes(name),
        "is the file complete, and from the same model as config.json (or the adapter's base model)?");
  TensorView v;
  v.info = info;
  v.data = file_.data() + header_.data_start + info->begin;
  v.n_bytes = static_cast<std::size_t>(info->n_bytes());
  return v;
}

// --- writer -----------------------------------------------------------------

namespace {

std::vector<std::pair<std::string, const TensorData*>> write_order(
    const std::map<std::string, TensorData>& tensors) {
  std::vector<std::pair<std::string, const TensorData*>> order;
  for (const auto& [name, t] : tensors) order.emplace_back(name, &t);
  // The reference writer: dtype (alignment) descending, then name ascending.
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if (a.second->dtype != b.second->dtype) return a.second->dtype > b.second->dtype;
    return a.first < b.first;
  });
  return order;
}

}  // namespace

std::string serialize_header(const std::map<std::string, TensorData>& tensors,
                             const std::map<std::string, std::string>& metadata) {
  std::string text = "{";
  bool first = true;
  if (!metadata.empty()) {
    text += "\"__metadata__\":" + json(metadata).dump();
    first = false;
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : write_order(tensors)) {
    if (name == "__metadata__") throw Error("write_safetensors: a tensor cannot be named __metadata__");
    std::uint64_t numel = 1;
    std::string shape;
    for (auto d : t->shape) {
      if (d < 0) throw Error("write_safetensors: tensor " + in_quotes(name) + " has a negative dimension");
      numel *= static_cast<std::uint64_t>(d);
      shape += (shape.empty() ? "" : ",") + std::to_string(d);
    }
    if (numel * dtype_size(t->dtype) != t->n_bytes) {
      throw Error("write_safetensors: tensor " + in_quotes(name) + " has " + std::to_string(t->n_bytes) +
                  " bytes but its shape and dtype need " + std::to_string(numel * dtype_size(t->dtype)));
    }
    if (!first) text += ",";
    first = false;
    text += json(name).dump() + ":{\"dtype\":\"" + dtype_name(t->dtype) + "\",\"shape\":[" + shape +
            "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t->n_bytes) +
            "]}";
    offset += t->n_bytes;
  }
  text += "}";
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + text;
}

void write_safetensors(const std::string& path, const std::map<std::string, TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string header = serialize_header(tensors, metadata);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(MappedFile::system_error("cannot create", tmp), "is the directory writable?");
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& [name, t] : write_order(tensors)) {
      if (t->n_bytes) out.write(static_cast<const char*>(t->data), static_cast<std::streamsize>(t->n_bytes));
    }
    out.flush();
    if (!out) throw Error(MappedFile::system_error("cannot write", tmp), "is the disk full?");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    throw Error("cannot rename " + tmp + " to " + path + ": " + ec.message(), "is the directory writable?");
}

// --- sharded index ----------------------------------------------------------

ShardIndex read_shard_index(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(MappedFile::system_error("cannot open", path), "does the file exist and is it readable?");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<std::string> duplicates;
  const json j = parse_json(text, path, "index", duplicates, "weight_map");
  if (!j.is_object()) fail(path, "index is not a JSON object (found " + std::string(j.type_name()) + ")");
  const auto map = j.find("weight_map");
  if (map == j.end() || !map->is_object()) {
    fail(path, "no 'weight_map' object",
         "a sharded checkpoint's index maps every tensor name to its shard file");
  }
  if (!duplicates.empty()) fail(path, "weight_map lists tensor " + in_quotes(duplicates.front()) + " twice");
  ShardIndex index;
  std::set<std::string> shards;
  for (const auto& [name, shard] : map->items()) {
    if (!shard.is_string())
      fail(path, "weight_map[" + in_quotes(name) + "] must be a file name, found " + show(shard));
    const auto& file = shard.get_ref<const std::string&>();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
        file.find('\\') != std::string::npos) {
      fail(path, "weight_map[" + in_quotes(name) + "] is " + in_quotes(file) +
                     "; shards must be plain file names in the checkpoint directory");
    }
    index.weight_map[name] = file;
    shards.insert(file);
  }
  index.shards.assign(shards.begin(), shards.end());
  return index;
}

void write_shard_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                       std::uint64_t total_size) {
  json j;
  j["metadata"] = {{"total_size", total_size}};
  j["weight_map"] = weight_map;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(MappedFile::system_error("cannot create", path), "is the directory writable?");
  out << j.dump(2) << "\n";
  if (!out) throw Error(MappedFile::system_error("cannot write", path), "is the disk full?");
}

}  // namespace sensecf::llm
