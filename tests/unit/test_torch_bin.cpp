// pytorch_model.bin (torch.save archives): the ZIP reader, the restricted
// unpickler and the archive checks each refuse malformed input with a message
// naming the file and the problem; valid archives (written by hand here, byte by
// byte, or by write_torch_bin) read back with their views, offsets and shared
// storages; checkpoint directories (single and sharded) load through
// load_weights / map_weights; `sensecf lm convert` writes verified safetensors.
// Archives written by real torch.save: tests/python/test_torch_bin_golden.py.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/checkpoint.h"
#include "sensecf/llm/io/safetensors.h"
#include "sensecf/llm/io/torch_bin.h"
#include "sensecf/llm/io/weights.h"
#include "test_util.h"

namespace sensecf::llm {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;  // "\x00"s: literals with NUL bytes

std::string le(std::uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// --- pickles by hand (protocol 2 opcodes, as torch.save writes them) -----------------

struct Pickle {
  std::string b = "\x80\x02";  // PROTO 2
  Pickle& raw(const std::string& s) {
    b += s;
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    return raw("c" + module + "\n" + name + "\n");
  }
  Pickle& str(const std::string& s) { return raw("X" + le(s.size(), 4) + s); }
  Pickle& integer(std::uint32_t v) { return raw("J" + le(v, 4)); }
  Pickle& ints(const std::vector<std::uint32_t>& v) {
    raw("(");
    for (auto x : v) integer(x);
    return raw("t");
  }
  // ('storage', torch.<type>, key, 'cpu', numel) BINPERSID
  Pickle& storage(const std::string& type, const std::string& key, std::uint32_t numel) {
    raw("(").str("storage").global("torch", type).str(key).str("cpu").integer(numel);
    return raw("tQ");
  }
  // _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& type, const std::string& key, std::uint32_t numel, std::uint32_t offset,
                 const std::vector<std::uint32_t>& shape, const std::vector<std::uint32_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").raw("(").storage(type, key, numel);
    integer(offset).ints(shape).ints(stride).raw("\x89");
    return global("collections", "OrderedDict").raw(")R").raw("tR");
  }
  // {}: EMPTY_DICT MARK ... (the caller adds key/value pairs) then state_end().
  Pickle& state_begin() { return raw("}("); }
  Pickle& state_end() { return raw("u."); }
};

// A one-tensor state dict {"w": F32 tensor of `shape` over storage "0" of numel}.
std::string one_tensor_pickle(std::uint32_t numel, const std::vector<std::uint32_t>& shape,
                              const std::vector<std::uint32_t>& stride, std::uint32_t offset = 0) {
  return Pickle()
      .state_begin()
      .str("w")
      .tensor("FloatStorage", "0", numel, offset, shape, stride)
      .state_end()
      .b;
}

// --- ZIP archives by hand (independent of write_torch_bin) ----------------------------

struct ZipFile {
  struct Entry {
    std::string name, data;
    std::uint16_t method = 0;
    std::size_t shift = 0;  // data starts at an offset ≡ shift (mod 64); torch's padding gives 0
  };
  std::vector<Entry> entries;
  bool zip64 = false;

  ZipFile& add(const std::string& name, const std::string& data, std::uint16_t method = 0) {
    entries.push_back({name, data, method, 0});
    return *this;
  }

  std::string bytes() const {
    std::string out, central;
    for (const auto& e : entries) {
      const std::uint64_t offset = out.size();
      std::string extra;
      if (zip64) extra = le(1, 2) + le(16, 2) + le(e.data.size(), 8) + le(e.data.size(), 8);
      const std::size_t unpadded = offset + 30 + e.name.size() + extra.size() + 4;
      const std::size_t pad = (64 + e.shift - unpadded % 64) % 64;
      extra += le(0x4246, 2) + le(pad, 2) + std::string(pad, 'Z');
      const std::string size32 = zip64 ? le(0xffffffff, 4) : le(e.data.size(), 4);
      out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(e.method, 2) + le(0, 4) + le(0, 4) + size32 +
             size32 + le(e.name.size(), 2) + le(extra.size(), 2) + e.name + extra + e.data;
      const std::string cextra =
          zip64 ? le(1, 2) + le(24, 2) + le(e.data.size(), 8) + le(e.data.size(), 8) + le(offset, 8) : "";
      central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(e.method, 2) + le(0, 4) +
                 le(0, 4) + size32 + size32 + le(e.name.size(), 2) + le(cextra.size(), 2) + le(0, 2) +
                 le(0, 2) + le(0, 2) + le(0, 4) + (zip64 ? le(0xffffffff, 4) : le(offset, 4)) + e.name +
                 cextra;
    }
    const std::uint64_t cd_offset = out.size();
    out += central;
    if (zip64) {
      const std::uint64_t record = out.size();
      out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) +
             le(entries.size(), 8) + le(entries.size(), 8) + le(central.size(), 8) + le(cd_offset, 8);
      out += le(0x07064b50, 4) + le(0, 4) + le(record, 8) + le(1, 4);
      out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xffff, 2) + le(0xffff, 2) + le(0xffffffff, 4) +
             le(0xffffffff, 4) + le(0, 2);
    } else {
      out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) +
             le(central.size(), 4) + le(cd_offset, 4) + le(0, 2);
    }
    return out;
  }
};

std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// archive/data.pkl with `pickle` and storage "0" holding `storage` bytes.
ZipFile archive(const std::string& pickle, const std::string& storage,
                const std::string& prefix = "archive") {
  ZipFile z;
  z.add(prefix + "/data.pkl", pickle).add(prefix + "/byteorder", "little");
  z.add(prefix + "/data/0", storage).add(prefix + "/version", "3\n");
  return z;
}

TorchArchive parse(const std::string& bytes, const std::string& source = "m.bin") {
  return parse_torch_archive(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), source);
}

TorchStateDict parse_pickle(const std::string& bytes, const std::string& source = "m.bin") {
  return parse_state_dict_pickle(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), source);
}

// --- valid archives ------------------------------------------------------------------

TEST(TorchBin, ReadsAHandMadeArchiveWithViewsAndSharedStorage) {
  // One storage of 6 floats viewed three ways, one F64 scalar, one empty F16 tensor;
  // the second view reuses memoised globals/storage (BINPUT/BINGET), as torch.save does.
  Pickle p;
  p.state_begin();
  p.str("full").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.str("t").global("torch._utils", "_rebuild_tensor_v2").raw("q\x01").raw("(");
  p.storage("FloatStorage", "0", 6).raw("q\x02");
  p.integer(0).ints({3, 2}).ints({1, 3}).raw("\x89").global("collections", "OrderedDict").raw(")RtR");
  p.str("row1").raw("h\x01(h\x02").integer(3).ints({3}).ints({1}).raw("\x89");
  p.global("collections", "OrderedDict").raw(")RtR");
  p.str("scalar").tensor("DoubleStorage", "1", 1, 0, {}, {});
  p.str("empty").tensor("HalfStorage", "2", 0, 0, {0, 4}, {4, 1});
  p.state_end();
  ZipFile z;
  z.add("checkpoint/data.pkl", p.b).add("checkpoint/data/0", floats({0, 1, 2, 3, 4, 5}));
  z.add("checkpoint/data/1", le(0x4004000000000000ull, 8)).add("checkpoint/data/2", "");
  const auto a = parse(z.bytes());
  EXPECT_EQ(a.prefix, "checkpoint");
  ASSERT_EQ(a.state.tensors.size(), 5u);
  EXPECT_EQ(a.state.tensors[0].name, "full");  // pickle order
  const auto& t = *a.state.find("t");
  EXPECT_EQ(t.shape, std::vector<std::int64_t>({3, 2}));
  EXPECT_EQ(t.stride, std::vector<std::int64_t>({1, 3}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_TRUE(a.state.find("full")->is_contiguous());
  const auto& row1 = *a.state.find("row1");
  EXPECT_EQ(row1.storage_offset, 3);
  EXPECT_EQ(row1.storage_key, "0");
  EXPECT_TRUE(row1.is_contiguous());
  EXPECT_EQ(a.state.find("scalar")->dtype, Dtype::kF64);
  EXPECT_TRUE(a.state.find("scalar")->shape.empty());
  EXPECT_EQ(a.state.find("empty")->numel(), 0u);
  EXPECT_EQ(a.state.storages.size(), 3u);
  EXPECT_EQ(a.storage_entries.at("0").size, 24u);
  EXPECT_EQ(a.storage_entries.at("0").data_offset % 64, 0u);  // torch's alignment padding
}

TEST(TorchBin, ReadsProtocol4Opcodes) {
  // What pickle protocol 4 writes for the same dict: FRAME, SHORT_BINUNICODE,
  // STACK_GLOBAL, MEMOIZE, BINGET, BININT1.
  auto s = [](const std::string& text) { return "\x8c" + le(text.size(), 1) + text + "\x94"; };
  std::string b = "\x80\x04\x95" + le(0, 8) + "}\x94(" + s("w");
  b += s("torch._utils") + s("_rebuild_tensor_v2") + "\x93\x94(";
  b += "(" + s("storage") + s("torch") + s("FloatStorage") + "\x93\x94" + s("0") + s("cpu") + "K\x02t\x94Q";
  b += "K\x00K\x02\x85\x94K\x01\x85\x94\x89"s + s("collections") + s("OrderedDict") +
       "\x93\x94)R\x94t\x94R\x94u.";
  const auto d = parse_pickle(b);
  ASSERT_EQ(d.tensors.size(), 1u);
  EXPECT_EQ(d.tensors[0].name, "w");
  EXPECT_EQ(d.tensors[0].shape, std::vector<std::int64_t>({2}));
  EXPECT_EQ(d.storages.at("0").numel, 2u);
}

TEST(TorchBin, ReadsParametersAndOrderedDictStateDicts) {
  // OrderedDict() + SETITEMS + BUILD of its _metadata, and a Parameter.
  Pickle p;
  p.global("collections", "OrderedDict").raw(")R(");
  p.str("p").global("torch._utils", "_rebuild_parameter").raw("(");
  p.tensor("FloatStorage", "0", 2, 0, {2}, {1}).raw("\x88").global("collections", "OrderedDict").raw(")RtR");
  p.raw("u}").str("_metadata").global("collections", "OrderedDict").raw(")Rsb.");
  const auto d = parse_pickle(p.b);
  ASSERT_EQ(d.tensors.size(), 1u);
  EXPECT_EQ(d.tensors[0].name, "p");
}

TEST(TorchBin, ReadsZip64Archives) {
  auto z = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2}));
  z.zip64 = true;
  const auto a = parse(z.bytes());
  EXPECT_EQ(a.state.tensors.size(), 1u);
  EXPECT_EQ(a.storage_entries.at("0").size, 8u);
}

TEST(TorchBin, WriteTorchBinRoundTrip) {
  test::TempDir dir;
  const std::vector<float> f = {1, 2, 3, 4, 5, 6};
  const std::vector<std::uint16_t> bf16 = {0x3f80, 0xc000};
  const std::int64_t i[2] = {-5, 1ll << 40};
  std::map<std::string, TensorData> t;
  t["a.f32"] = {Dtype::kF32, {2, 3}, f.data(), 24};
  t["b.bf16"] = {Dtype::kBF16, {2}, bf16.data(), 4};
  t["c.i64"] = {Dtype::kI64, {2}, i, 16};
  t["d.empty"] = {Dtype::kF16, {0, 3}, nullptr, 0};
  for (const bool zip64 : {false, true}) {
    const auto path = dir.file(zip64 ? "z64.bin" : "pytorch_model.bin");
    write_torch_bin(path, t, zip64);
    const auto file = TorchBinFile::open(path);
    EXPECT_EQ(file.archive().prefix, zip64 ? "z64" : "pytorch_model");
    ASSERT_EQ(file.tensors().size(), 4u);
    const auto& a = file.tensor("a.f32");
    EXPECT_EQ(a.shape, std::vector<std::int64_t>({2, 3}));
    EXPECT_EQ(a.stride, std::vector<std::int64_t>({3, 1}));
    const ByteSpan s = file.storage(a);
    ASSERT_EQ(s.size, 24u);
    EXPECT_EQ(std::memcmp(s.data, f.data(), 24), 0);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.data) % 64, 0u);
    EXPECT_EQ(file.tensor("b.bf16").dtype, Dtype::kBF16);
    EXPECT_EQ(std::memcmp(file.storage(file.tensor("c.i64")).data, i, 16), 0);
    EXPECT_EQ(file.storage(file.tensor("d.empty")).size, 0u);
    EXPECT_THROW_WITH(file.tensor("nope"), Error, "no tensor 'nope'");
  }
  std::map<std::string, TensorData> u16;
  u16["x"] = {Dtype::kU16, {1}, bf16.data(), 2};
  EXPECT_THROW_WITH(write_torch_bin(dir.file("u16.bin"), u16), Error,
                    "has dtype U16, which has no torch storage type");
}

// --- malformed archives ----------------------------------------------------------------

TEST(TorchBin, RefusesWhatIsNotATorchSaveZip) {
  EXPECT_THROW_WITH(parse("hello, world: not a zip at all", "x.bin"), Error,
                    "x.bin: not a torch.save archive: it begins with bytes 68 65 6c 6c");
  EXPECT_THROW_WITH(parse("PK\x03\x04"), Error, "file is 4 bytes, too short for a ZIP archive");
  const std::string safetensors = le(2, 8) + "{}";
  try {
    parse(safetensors);
    ADD_FAILURE() << "a safetensors image was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("looks like a safetensors file"), std::string::npos) << e.hint();
  }
  // The legacy format: a pickled magic number first.
  const std::string legacy = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02}q\x00."s;
  EXPECT_TRUE(is_legacy_torch_save(reinterpret_cast<const std::uint8_t*>(legacy.data()), legacy.size()));
  try {
    parse(legacy, "old.bin");
    ADD_FAILURE() << "the legacy format was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("old.bin: written in torch.save's legacy format"), std::string::npos)
        << e.what();
    EXPECT_NE(e.hint().find("torch.save(torch.load('old.bin', map_location='cpu'), 'old.bin')"),
              std::string::npos)
        << e.hint();
  }
}

TEST(TorchBin, RefusesTruncatedArchives) {
  const std::string good = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2})).bytes();
  ASSERT_NO_THROW(parse(good));
  // Cut anywhere before the end record: the record is gone.
  EXPECT_THROW_WITH(parse(good.substr(0, good.size() - 30)), Error,
                    "ZIP archive without its end-of-central-directory record: the file is truncated");
  // The end record promises a longer central directory than there is.
  std::string short_cd = good;
  const std::size_t end = good.size() - 22;
  const auto cd_size = static_cast<std::uint32_t>(static_cast<unsigned char>(good[end + 12]) |
                                                  (static_cast<unsigned char>(good[end + 13]) << 8));
  short_cd.replace(end + 12, 4, le(cd_size - 1, 4));
  EXPECT_THROW_WITH(parse(short_cd), Error, "central directory entry 3 at offset");
  EXPECT_THROW_WITH(parse(short_cd), Error, "is truncated");
  std::string many = good;
  many.replace(end + 10, 2, le(40, 2));
  EXPECT_THROW_WITH(parse(many), Error, "the central directory claims 40 entries");
  std::string far = good;
  far.replace(end + 16, 4, le(good.size(), 4));
  EXPECT_THROW_WITH(parse(far), Error, "reaches past its end record");
  // An entry whose bytes run past the end of the file.
  auto z = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2}));
  z.add("archive/extra", std::string(100, 'x'));
  std::string central = z.bytes();
  const std::size_t central_name = central.rfind("archive/extra");
  central.replace(central_name - 46 + 20, 8, le(1000, 4) + le(1000, 4));
  EXPECT_THROW_WITH(parse(central), Error, "zip entry 'archive/extra': its 1000 bytes at offset");
}

TEST(TorchBin, RefusesCompressedEncryptedAndDuplicateEntries) {
  auto z = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2}));
  z.entries[0].method = 8;
  try {
    parse(z.bytes());
    ADD_FAILURE() << "a compressed data.pkl was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zip entry 'archive/data.pkl' is compressed (method 8)"),
              std::string::npos)
        << e.what();
    EXPECT_NE(e.hint().find("save it again with torch.save"), std::string::npos);
  }
  auto storage = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2}));
  storage.entries[2].method = 8;
  EXPECT_THROW_WITH(parse(storage.bytes()), Error, "zip entry 'archive/data/0' is compressed");
  auto twice = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2}));
  twice.add("archive/version", "3\n");
  EXPECT_THROW_WITH(parse(twice.bytes()), Error, "holds zip entry 'archive/version' twice");
  std::string encrypted = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2})).bytes();
  const std::size_t central = encrypted.find("PK\x01\x02");
  encrypted[central + 8] = 1;
  EXPECT_THROW_WITH(parse(encrypted), Error, "zip entry 'archive/data.pkl' is encrypted");
}

TEST(TorchBin, RefusesArchivesWithoutTheExpectedEntries) {
  ZipFile none;
  none.add("archive/version", "3\n");
  EXPECT_THROW_WITH(parse(none.bytes()), Error,
                    "no <prefix>/data.pkl in the archive (entries: archive/version)");
  ZipFile two;
  two.add("a/data.pkl", one_tensor_pickle(2, {2}, {1})).add("b/data.pkl", "");
  EXPECT_THROW_WITH(parse(two.bytes()), Error, "holds 2 data.pkl files (a/data.pkl, b/data.pkl)");
  ZipFile missing;
  missing.add("archive/data.pkl", one_tensor_pickle(2, {2}, {1}));
  EXPECT_THROW_WITH(parse(missing.bytes(), "m.bin"), Error,
                    "m.bin: storage '0' (of tensor 'w') has no entry 'archive/data/0' in the archive");
  EXPECT_THROW_WITH(
      parse(archive(one_tensor_pickle(2, {2}, {1}), floats({1})).bytes()), Error,
      "zip entry 'archive/data/0' has 4 bytes but storage '0' (of tensor 'w') is F32 × 2 = 8 bytes");
  auto big = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2}));
  big.entries[1].data = "big";
  EXPECT_THROW_WITH(parse(big.bytes()), Error,
                    "written on a big-endian machine (archive/byteorder is 'big')");
  big.entries[1].data = "middle";
  EXPECT_THROW_WITH(parse(big.bytes()), Error, "archive/byteorder is 'middle', not 'little'");
  auto script = archive(one_tensor_pickle(2, {2}, {1}), floats({1, 2}));
  script.add("archive/code/__torch__.py", "def forward(self): ...");
  EXPECT_THROW_WITH(parse(script.bytes()), Error, "a TorchScript archive (torch.jit.save)");
}

// --- malformed pickles -----------------------------------------------------------------

TEST(TorchBin, RefusesForbiddenGlobalsBeforeRunningAnything) {
  // os.system('echo pwned') as a pickle would run it: GLOBAL, args, REDUCE.
  const std::string evil =
      "\x80\x02}(X\x01\x00\x00\x00w"s + "cos\nsystem\n(X\x0a\x00\x00\x00"s + "echo pwnedtRu.";
  try {
    parse_pickle(evil, "evil.bin");
    ADD_FAILURE() << "os.system was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to run pickle global 'os.system' in evil.bin (data.pkl "
                                         "byte 10); a state dict never needs it"),
              std::string::npos)
        << e.what();
  }
  // STACK_GLOBAL (protocol 4) and other near-misses are refused the same way.
  const std::string stacked =
      "\x80\x04\x8c\x08"
      "builtins\x8c\x04"
      "eval\x93.";
  EXPECT_THROW_WITH(parse_pickle(stacked), Error, "refusing to run pickle global 'builtins.eval'");
  const auto refused = [](const std::string& module, const std::string& name) {
    return Pickle().global(module, name).raw(".").b;
  };
  EXPECT_THROW_WITH(parse_pickle(refused("torch", "load")), Error, "global 'torch.load'");
  EXPECT_THROW_WITH(parse_pickle(refused("torch.storage", "_load_from_bytes")), Error,
                    "global 'torch.storage._load_from_bytes'");
  EXPECT_THROW_WITH(parse_pickle(refused("torch._utils", "_rebuild_tensor_v3")), Error,
                    "global 'torch._utils._rebuild_tensor_v3'");
  EXPECT_THROW_WITH(parse_pickle(refused("collections", "OrderedDictX")), Error,
                    "global 'collections.OrderedDictX'");
  try {
    parse_pickle(refused("torch", "QInt8Storage"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("storage type are not supported"), std::string::npos) << e.hint();
  }
  try {
    parse_pickle(refused("__torch__.Net", "Net"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("TorchScript"), std::string::npos) << e.hint();
  }
}

TEST(TorchBin, RefusesTruncatedPickles) {
  const std::string good = one_tensor_pickle(2, {2}, {1});
  ASSERT_NO_THROW(parse_pickle(good));
  // Mid-opcode: a BINUNICODE whose length runs past the end.
  EXPECT_THROW_WITH(
      parse_pickle("\x80\x02}(X\x64\x00\x00\x00"s + "abc", "t.bin"), Error,
      "t.bin: data.pkl byte 4 (BINUNICODE): truncated pickle: the opcode needs 100 more bytes but "
      "data.pkl ends at byte 12");
  // Every cut of the good pickle fails cleanly, each with a message about where.
  for (std::size_t n = 0; n < good.size(); ++n) {
    try {
      parse_pickle(good.substr(0, n));
      ADD_FAILURE() << "a pickle cut to " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("m.bin"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW_WITH(parse_pickle(good.substr(0, good.size() - 1)), Error,
                    "data.pkl ends at byte " + std::to_string(good.size() - 1) + " without a STOP opcode");
  EXPECT_THROW_WITH(parse_pickle(""), Error, "data.pkl is empty");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02"
                                 "ccollections"),
                    Error, "(GLOBAL): truncated pickle: no end of line");
}

TEST(TorchBin, RefusesTensorsOutsideTheirStorage) {
  // [2, 3] contiguous needs 6 elements; the storage has 4.
  EXPECT_THROW_WITH(
      parse_pickle(one_tensor_pickle(4, {2, 3}, {3, 1}), "s.bin"), Error,
      "s.bin: tensor 'w' (shape [2, 3], stride [3, 1], offset 0) reaches element 5 of storage '0', "
      "which has 4 elements");
  // An offset past the end; a stride that jumps out.
  EXPECT_THROW_WITH(parse_pickle(one_tensor_pickle(4, {2}, {1}, 3)), Error,
                    "reaches element 4 of storage '0'");
  EXPECT_THROW_WITH(parse_pickle(one_tensor_pickle(4, {2}, {4})), Error, "reaches element 4");
  EXPECT_THROW_WITH(parse_pickle(one_tensor_pickle(4, {3}, {0x7fffffff})), Error, "reaches element");
  // Huge shapes overflow and are refused, not wrapped.
  EXPECT_THROW_WITH(parse_pickle(one_tensor_pickle(4, {0x7fffffff, 0x7fffffff, 0x7fffffff}, {1, 1, 1})),
                    Error, "more elements than fit in 64 bits");
  // Empty views need no bytes; a 0-dim tensor needs one element.
  EXPECT_NO_THROW(parse_pickle(one_tensor_pickle(0, {0, 5}, {5, 1}, 7)));
  EXPECT_NO_THROW(parse_pickle(one_tensor_pickle(1, {}, {})));
  EXPECT_THROW_WITH(parse_pickle(one_tensor_pickle(0, {}, {})), Error, "reaches element 0 of storage '0'");
  EXPECT_THROW_WITH(parse_pickle(one_tensor_pickle(6, {2, 3}, {3})), Error,
                    "(size) [2, 3] and 4 (stride) [3] have different lengths");
}

TEST(TorchBin, RefusesObjectsThatAreNotFlatStateDicts) {
  // {"state_dict": {"w": tensor}, "epoch": 3}
  Pickle nested;
  nested.raw("}(").str("state_dict").raw("}(").str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1}).raw("u");
  nested.str("epoch").integer(3).raw("u.");
  try {
    parse_pickle(nested.b, "ckpt.bin");
    ADD_FAILURE() << "a nested checkpoint was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "ckpt.bin: holds a checkpoint dict, not a state dict: its key 'state_dict' "
                  "is a dict of 1 tensors (other keys: 'epoch')"),
              std::string::npos)
        << e.what();
    EXPECT_NE(e.hint().find("torch.load('ckpt.bin', map_location='cpu')['state_dict']"), std::string::npos)
        << e.hint();
  }
  EXPECT_THROW_WITH(parse_pickle(Pickle().raw("}(").str("w").integer(3).raw("u.").b), Error,
                    "the value of 'w' is a int, not a tensor");
  EXPECT_THROW_WITH(parse_pickle(Pickle().raw("]").raw(".").b), Error,
                    "data.pkl holds a list of 0 items, not a state dict");
  EXPECT_THROW_WITH(parse_pickle(Pickle().tensor("FloatStorage", "0", 1, 0, {}, {}).raw(".").b), Error,
                    "data.pkl holds a tensor, not a state dict");
  Pickle twice;
  twice.state_begin().str("w").tensor("FloatStorage", "0", 1, 0, {}, {}).str("w").raw("h\x00"s);
  EXPECT_THROW_WITH(parse_pickle(twice.b), Error, "memo entry 0 was never stored");
  Pickle dup;
  dup.state_begin()
      .str("w")
      .tensor("FloatStorage", "0", 1, 0, {}, {})
      .raw("q\x05")
      .str("w")
      .raw("h\x05")
      .state_end();
  EXPECT_THROW_WITH(parse_pickle(dup.b), Error, "the state dict names 'w' twice");
  EXPECT_THROW_WITH(
      parse_pickle(Pickle().raw("}(").integer(1).tensor("FloatStorage", "0", 1, 0, {}, {}).raw("u.").b),
      Error, "a key of the state dict is a int, not a string");
}

TEST(TorchBin, RefusesCorruptPickleStructure) {
  EXPECT_THROW_WITH(parse_pickle("\x80\x02s."), Error, "(SETITEM): stack underflow");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02}(Xu."), Error, "(BINUNICODE): truncated");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02}(K\x01u."), Error, "an odd number of items (1)");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02K\x01K\x02K\x03s."), Error,
                    "(SETITEM): the target of SETITEM(S) is a int");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02(0."), Error, "(POP): stack underflow");  // POP cannot cross a MARK
  EXPECT_THROW_WITH(parse_pickle("\x80\x02t."), Error, "(TUPLE): no MARK before it");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02K\x01K\x02R."), Error, "(REDUCE): REDUCE's arguments is a int");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02\x8a\x09" + std::string(9, '\x01') + "."), Error,
                    "an integer of 9 bytes does not fit in 64 bits");
  EXPECT_THROW_WITH(parse_pickle("\x80\x06."), Error, "pickle protocol 6 is newer than 5");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02(I1\n."), Error, "opcode 0x49 is not one a state dict needs");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02]K\x01"
                                 "b."),
                    Error, "BUILD sets the state of a list; only an OrderedDict's attributes");
  EXPECT_THROW_WITH(parse_pickle("\x80\x02(X\x03\x00\x00\x00"s + "abcK\x01tQ."), Error,
                    "(BINPERSID): persistent id is not ('storage', type, key, location, numel)");
  EXPECT_THROW_WITH(parse_pickle(Pickle().global("torch", "FloatStorage").raw(")R.").b), Error,
                    "torch.FloatStorage is called directly");
  Pickle clash;
  clash.raw("(").storage("FloatStorage", "0", 2).storage("HalfStorage", "0", 2).raw("t.");
  EXPECT_THROW_WITH(parse_pickle(clash.b), Error, "storage '0' is declared twice, as F32 × 2 and as F16 × 2");
  Pickle args;
  args.global("torch._utils", "_rebuild_tensor_v2").raw("(").storage("FloatStorage", "0", 2).raw("tR.");
  EXPECT_THROW_WITH(parse_pickle(args.b), Error, "_rebuild_tensor_v2 takes 6 or 7 arguments, got 1");
  // OrderedDict(list) over a memoised list of 100k pairs, 10k times: quadratic
  // work from 270 kB of input (10^9 items, gigabytes) is cut short.
  std::string hostile = "\x80\x02K\x01K\x02\x86q\x02]q\x00("s;
  for (int i = 0; i < 100000; ++i) hostile += "h\x02";
  hostile +=
      "e"
      "ccollections\nOrderedDict\nq\x01";
  for (int i = 0; i < 10000; ++i) hostile += "h\x01(h\x00tR0"s;
  EXPECT_THROW_WITH(parse_pickle(hostile + "N."), Error, "the pickle walks its containers over and over");
  // Text PUT/GET of protocol 0 and a self-referencing list are harmless.
  EXPECT_THROW_WITH(parse_pickle("\x80\x02]p7\ng7\na."), Error, "data.pkl holds a list of 1 item, not");
}

// --- checkpoints and LibTorch ------------------------------------------------------------

std::string write_bin(const std::string& path, const std::map<std::string, std::vector<float>>& tensors) {
  std::map<std::string, TensorData> t;
  for (const auto& [name, v] : tensors) {
    t[name] = {Dtype::kF32, {static_cast<std::int64_t>(v.size())}, v.data(), v.size() * sizeof(float)};
  }
  write_torch_bin(path, t);
  return path;
}

TEST(TorchBinCheckpoint, DirectoriesShardsAndPrecedence) {
  test::TempDir dir;
  write_bin(dir.file("pytorch_model.bin"), {{"a", {1, 2}}, {"b", {3}}});
  const auto c = Checkpoint::open(dir.path().string());
  EXPECT_EQ(c.format(), CheckpointFormat::kTorchBin);
  EXPECT_EQ(c.files(), std::vector<std::string>({dir.file("pytorch_model.bin")}));
  EXPECT_EQ(c.names(), std::vector<std::string>({"a", "b"}));
  EXPECT_EQ(c.tensor("b").storage.size, 4u);
  EXPECT_EQ(c.tensor("a").stride, std::vector<std::int64_t>({1}));
  EXPECT_THROW_WITH(c.tensor("z"), Error, "checkpoint has no tensor 'z'");
  EXPECT_EQ(Checkpoint::open(dir.file("pytorch_model.bin")).format(), CheckpointFormat::kTorchBin);
  // safetensors wins when both are there, as in transformers.
  std::map<std::string, TensorData> st;
  const float one = 1;
  st["s"] = {Dtype::kF32, {1}, &one, 4};
  write_safetensors(dir.file("model.safetensors"), st);
  EXPECT_EQ(Checkpoint::open(dir.path().string()).format(), CheckpointFormat::kSafetensors);
  EXPECT_EQ(load_weights(dir.path().string()).count("s"), 1u);

  test::TempDir sharded;
  write_bin(sharded.file("pytorch_model-00001-of-00002.bin"), {{"a", {1, 2}}});
  write_bin(sharded.file("pytorch_model-00002-of-00002.bin"), {{"b", {3}}, {"c", {4, 5, 6}}});
  const std::string index = sharded.write(
      "pytorch_model.bin.index.json",
      R"({"metadata": {"total_size": 24}, "weight_map": {"a": "pytorch_model-00001-of-00002.bin",
          "b": "pytorch_model-00002-of-00002.bin", "c": "pytorch_model-00002-of-00002.bin"}})");
  EXPECT_EQ(Checkpoint::open(sharded.path().string()).names(), std::vector<std::string>({"a", "b", "c"}));
  const auto by_index = Checkpoint::open(index);
  EXPECT_EQ(by_index.format(), CheckpointFormat::kTorchBin);
  EXPECT_EQ(by_index.files().size(), 2u);
  const auto w = load_weights(sharded.path().string());
  EXPECT_TRUE(torch::equal(w.at("c"), torch::tensor({4.0f, 5.0f, 6.0f})));
  // The index is cross-checked as for safetensors shards.
  sharded.write(
      "pytorch_model.bin.index.json",
      R"({"weight_map": {"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"}})");
  EXPECT_THROW_WITH(
      Checkpoint::open(sharded.path().string()), Error,
      "shard 'pytorch_model-00002-of-00002.bin' holds tensor 'c', which weight_map does not list");
  sharded.write("pytorch_model.bin.index.json", R"({"weight_map": {"a": "gone.bin"}})");
  EXPECT_THROW_WITH(Checkpoint::open(sharded.path().string()), Error,
                    "maps 1 tensors (e.g. 'a') to shard 'gone.bin', which does not exist");
  // A corrupt file fails with the reader's message, naming the file, through load_weights too.
  test::TempDir corrupt;
  corrupt.write("pytorch_model.bin", "PK\x03\x04");
  EXPECT_THROW_WITH(Checkpoint::open(corrupt.path().string()), Error,
                    "pytorch_model.bin: file is 4 bytes, too short");
  EXPECT_THROW_WITH(load_weights(corrupt.path().string()), Error, "pytorch_model.bin: file is 4 bytes, too short");
}

TEST(TorchBinWeights, LoadsViewsSharedStoragesAndDtypes) {
  test::TempDir dir;
  // storage "0": 6 floats viewed as [2, 3], its transpose and its second row;
  // storage "1": BF16, unaligned on purpose; storage "2": an int64 buffer.
  Pickle p;
  p.state_begin();
  p.str("full").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.str("t").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
  p.str("row1").tensor("FloatStorage", "0", 6, 3, {3}, {1});
  p.str("bf16").tensor("BFloat16Storage", "1", 2, 0, {2}, {1});
  p.str("ints").tensor("LongStorage", "2", 1, 0, {1}, {1});
  p.state_end();
  ZipFile z;
  z.add("x/data.pkl", p.b).add("x/data/0", floats({0, 1, 2, 3, 4, 5}));
  z.add("x/data/1", le(0x3f80, 2) + le(0xc000, 2)).add("x/data/2", le(42, 8));
  z.entries[2].shift = 1;  // bf16 values at an odd address: copied, not viewed
  z.entries[3].shift = 4;  // int64 at an address ≡ 4 (mod 8)
  { std::ofstream(dir.file("pytorch_model.bin"), std::ios::binary) << z.bytes(); }
  const auto file = TorchBinFile::open(dir.file("pytorch_model.bin"));
  ASSERT_NE(reinterpret_cast<std::uintptr_t>(file.storage(file.tensor("bf16")).data) % 2, 0u);

  const auto mapped = map_weights(dir.path().string());
  EXPECT_EQ(mapped.at("t").strides().vec(), std::vector<std::int64_t>({1, 3}));  // views stay views
  EXPECT_EQ(mapped.at("ints").scalar_type(), torch::kInt64);
  EXPECT_EQ(mapped.at("ints").item<std::int64_t>(), 42);
  EXPECT_EQ(mapped.at("bf16").scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(mapped.at("bf16").to(torch::kFloat32), torch::tensor({1.0f, -2.0f})));
  EXPECT_EQ(mapped.at("full").data_ptr(), mapped.at("t").data_ptr());  // one storage

  EXPECT_THROW_WITH(load_weights(dir.path().string()), Error,
                    "tensor 'ints' has dtype I64; weights must be F32");
  // Without the integer buffer: every tensor converted, contiguous, owning its memory.
  Pickle floats_only;
  floats_only.state_begin();
  floats_only.str("full").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  floats_only.str("t").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
  floats_only.str("row1").tensor("FloatStorage", "0", 6, 3, {3}, {1});
  floats_only.str("bf16").tensor("BFloat16Storage", "1", 2, 0, {2}, {1});
  floats_only.state_end();
  z.entries[0].data = floats_only.b;
  z.entries.pop_back();
  { std::ofstream(dir.file("pytorch_model.bin"), std::ios::binary | std::ios::trunc) << z.bytes(); }
  const auto w = load_weights(dir.path().string(), torch::kFloat64);
  const auto full = torch::arange(6, torch::kFloat64).view({2, 3});
  EXPECT_TRUE(torch::equal(w.at("full"), full));
  EXPECT_TRUE(torch::equal(w.at("t"), full.t()));
  EXPECT_TRUE(w.at("t").is_contiguous());
  EXPECT_TRUE(torch::equal(w.at("row1"), full[1]));
  EXPECT_TRUE(torch::equal(w.at("bf16"), torch::tensor({1.0, -2.0}, torch::kFloat64)));
  EXPECT_NE(w.at("full").data_ptr(), w.at("t").data_ptr());
  const auto as_bf16 = load_weights(dir.path().string(), torch::kBFloat16);
  EXPECT_EQ(as_bf16.at("row1").scalar_type(), torch::kBFloat16);
}

// --- sensecf lm convert ---------------------------------------------------------------------

TEST(LmConvert, WritesVerifiedSafetensorsAndCopiesTheSideFiles) {
  test::TempDir dir;
  const auto model = dir.path() / "model";
  fs::create_directories(model);
  std::vector<float> big(64);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.5f;
  write_bin((model / "pytorch_model.bin").string(), {{"a", big}, {"b", {1, 2, 3}}, {"c", big}});
  std::ofstream(model / "config.json")
      << R"({"model_type": "mistral", "torch_dtype": "float32", "dtype": "float32"})";
  std::ofstream(model / "tokenizer.json") << "{}";
  const std::string bin = test::sensecf_bin();
  const auto out = (dir.path() / "out").string();

  auto r = test::run_command(bin + " lm convert --model " + model.string() + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("converted 3 tensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("GB/s); verified"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(out + "/tokenizer.json"));
  const auto back = load_weights(out);
  EXPECT_TRUE(torch::equal(back.at("c"), torch::from_blob(big.data(), {64}).clone()));
  std::stringstream config;
  config << std::ifstream(out + "/config.json").rdbuf();
  EXPECT_EQ(config.str(), R"({"model_type": "mistral", "torch_dtype": "float32", "dtype": "float32"})");

  r = test::run_command(bin + " lm convert --model " + model.string() + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is not empty"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;

  // --force, shards of at most 256 bytes, bfloat16: the old model.safetensors goes.
  r = test::run_command(bin + " lm convert --model " + model.string() + " --out " + out +
                        " --force --max-shard-size 256B --dtype bfloat16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(out + "/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(out + "/model-00002-of-00002.safetensors"));
  const auto c = Checkpoint::open(out);
  EXPECT_EQ(c.format(), CheckpointFormat::kSafetensors);
  EXPECT_EQ(c.tensor("a").dtype, Dtype::kBF16);
  std::stringstream config2;
  config2 << std::ifstream(out + "/config.json").rdbuf();
  EXPECT_NE(config2.str().find(R"("torch_dtype": "bfloat16")"), std::string::npos) << config2.str();
  EXPECT_NE(config2.str().find(R"("dtype": "bfloat16")"), std::string::npos) << config2.str();
  EXPECT_LT(config2.str().find("model_type"), config2.str().find("torch_dtype"));  // key order kept

  r = test::run_command(bin + " lm convert --model " + model.string() + " --out " + model.string());
  EXPECT_NE(r.output.find("--out is the --model directory"), std::string::npos) << r.output;
  r = test::run_command(bin + " lm convert --model " + (model / "pytorch_model.bin").string() + " --out " +
                        model.string() + " --force");
  EXPECT_NE(r.output.find("--out is the --model directory"), std::string::npos) << r.output;
  r = test::run_command(bin + " lm convert --model " + model.string() + " --out " + out +
                        "2 --max-shard-size 5XB");
  EXPECT_NE(r.output.find("--max-shard-size: '5XB' is not a size"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sensecf::llm
