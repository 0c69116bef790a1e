// safetensors: every malformed-header case is refused with a message naming the
// file, the tensor and the problem; the writer's bytes follow the reference
// layout and read back identically; sharded checkpoints are cross-checked
// against their index; load_weights/save_weights/check_weights on tensors.
// SafetensorsGolden.* exchange files with tests/python/test_safetensors_golden.py
// (an independent reader/writer of the format in plain Python + numpy).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/checkpoint.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/io/safetensors.h"
#include "sensecf/llm/io/weights.h"
#include "test_util.h"

namespace sensecf::llm {
namespace {

namespace fs = std::filesystem;

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file image: length, header text as given (no padding), buffer.
std::string image(const std::string& header, const std::string& buffer) {
  return le64(header.size()) + header + buffer;
}

Header parse(const std::string& bytes, const std::string& source = "x.safetensors") {
  return parse_header(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), bytes.size(),
                      source);
}

void expect_refused(const std::string& bytes, const std::string& fragment) {
  EXPECT_THROW_WITH(parse(bytes), Error, fragment);
}

const std::string kF32x2 = R"("dtype":"F32","shape":[2],"data_offsets":)";

TEST(Safetensors, ParsesAValidHeader) {
  const auto h = parse(
      image(R"({"__metadata__":{"format":"pt"},"b":{)" + kF32x2 + R"([8,16]},"a":{)" + kF32x2 + "[0,8]}}",
            std::string(16, '\0')));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");  // sorted by offset
  EXPECT_EQ(h.tensors[1].name, "b");
  EXPECT_EQ(h.tensors[1].begin, 8u);
  EXPECT_EQ(h.tensors[1].shape, std::vector<std::int64_t>({2}));
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.buffer_size, 16u);
  EXPECT_EQ(h.find("b")->end, 16u);
  EXPECT_EQ(h.find("c"), nullptr);
}

TEST(Safetensors, AcceptsEmptyScalarAndZeroSizedTensors) {
  const auto h = parse(image(R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},)"
                             R"("z":{"dtype":"BF16","shape":[0,5],"data_offsets":[8,8]}}  )",
                             std::string(8, '\1')));
  EXPECT_EQ(h.find("s")->numel(), 1u);
  EXPECT_EQ(h.find("z")->numel(), 0u);
  EXPECT_EQ(parse(image("{}", "")).tensors.size(), 0u);
}

TEST(Safetensors, RefusesMalformedLengths) {
  expect_refused("abc", "file is 3 bytes");
  expect_refused(le64(0), "header length is 0");
  expect_refused(le64(1) + "{", "header length is 1");
  expect_refused(le64(1000) + "{}", "header length is 1000 bytes but the file has only 2 bytes");
  expect_refused(le64(200'000'000) + "{}", "more than the limit of 100000000");
  expect_refused(le64(~0ULL) + "{}", "more than the limit");
}

TEST(Safetensors, RefusesBadJson) {
  expect_refused(image(R"({"a": )", ""), "x.safetensors: header is not valid JSON");
  expect_refused(image("[1,2]", ""), "header is not a JSON object (found array)");
  expect_refused(image(R"("abc")", ""), "(found string)");
  expect_refused(image(std::string("{\"a\0\":1}", 9), ""), "not valid JSON");
  expect_refused(image("{\"\xff\":1}", ""), "not valid JSON");  // not UTF-8
  expect_refused(image(R"({"a":{)" + kF32x2 + R"([0,8]},"a":{)" + kF32x2 + "[8,16]}}", std::string(16, '\0')),
                 "header names 'a' twice");
}

TEST(Safetensors, RefusesBadTensorEntries) {
  const std::string buf(8, '\0');
  expect_refused(image(R"({"w":[1]})", buf), "x.safetensors: tensor 'w': entry must be an object");
  expect_refused(image(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", buf), "tensor 'w': no 'dtype'");
  expect_refused(image(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", buf),
                 "tensor 'w': unknown dtype \"Q4\"; expected one of BOOL, U8");
  expect_refused(image(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", buf),
                 "'dtype' must be a string");
  expect_refused(image(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", buf), "tensor 'w': no 'shape'");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", buf),
                 "'shape' must be an array");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", buf),
                 "tensor 'w': shape[0] is -2; dimensions must be non-negative integers");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[1,2.0],"data_offsets":[0,8]}})", buf),
                 "shape[1] is 2.0");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", buf),
                 "shape[0] is \"2\"");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})", buf),
                 "shape[0] is 9223372036854775808");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", buf),
                 "more bytes than fit in 64 bits");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[2]}})", buf), "tensor 'w': no 'data_offsets'");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", buf),
                 "must be [begin, end]");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}})", buf),
                 "must be [begin, end]");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", buf), "has begin > end");
  // Found by the fuzzer: rendering a hostile value for the message must not recurse without bound.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_refused(image(R"({"w":)" + deep + "}", buf),
                 "tensor 'w': entry must be an object, found a deeply nested array");
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[)" + deep + R"(],"data_offsets":[0,8]}})", buf),
                 "shape[0] is a deeply nested array");
}

TEST(Safetensors, RefusesBadOffsets) {
  // Out of range: end beyond the 8-byte buffer.
  expect_refused(image(R"({"w":{)" + kF32x2 + "[4,12]}}", std::string(8, '\0')),
                 "tensor 'w': data_offsets [4,12] end beyond the data buffer (8 bytes");
  // Span disagrees with shape x dtype.
  expect_refused(image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
                 "tensor 'w': data_offsets [0,8] span 8 bytes but F32 shape [3] needs 12");
  expect_refused(image(R"({"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,4]}})", std::string(4, '\0')),
                 "span 4 bytes but BF16 shape [2,2] needs 8");
  // Overlap.
  expect_refused(image(R"({"a":{)" + kF32x2 + R"([0,8]},"b":{)" + kF32x2 + "[4,12]}}", std::string(12, '\0')),
                 "tensor 'b': bytes [4, 12) overlap tensor 'a' (which ends at 8)");
  // Identical ranges are an overlap too.
  expect_refused(image(R"({"a":{)" + kF32x2 + R"([0,8]},"b":{)" + kF32x2 + "[0,8]}}", std::string(8, '\0')),
                 "overlap tensor 'a'");
  // Gap between tensors, gap at the start, bytes after the last tensor.
  expect_refused(
      image(R"({"a":{)" + kF32x2 + R"([0,8]},"b":{)" + kF32x2 + "[12,20]}}", std::string(20, '\0')),
      "tensor 'b': begins at byte 12 but the previous tensor ends at 8");
  expect_refused(image(R"({"a":{)" + kF32x2 + "[4,12]}}", std::string(12, '\0')),
                 "tensor 'a': begins at byte 4");
  expect_refused(image(R"({"a":{)" + kF32x2 + "[0,8]}}", std::string(10, '\0')),
                 "the tensors cover 8 bytes of the 10-byte data buffer");
}

TEST(Safetensors, RefusesBadMetadata) {
  expect_refused(image(R"({"__metadata__":{"format":1}})", ""),
                 "__metadata__['format'] must be a string, found 1");
  expect_refused(image(R"({"__metadata__":{"a":{"b":"c"}}})", ""), "__metadata__['a'] must be a string");
  expect_refused(image(R"({"__metadata__":["pt"]})", ""),
                 "__metadata__ must be an object of strings, found array");
}

TEST(Safetensors, ErrorsNameTheFileOnDisk) {
  test::TempDir dir;
  const auto path =
      dir.write("bad.safetensors",
                image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_THROW_WITH(SafetensorsFile::open(path), Error, path + ": tensor 'w': data_offsets");
  EXPECT_THROW_WITH(SafetensorsFile::open(dir.file("none.safetensors")), Error, "cannot open");
  EXPECT_THROW_WITH(SafetensorsFile::open(dir.write("tiny.safetensors", "abc")), Error, "file is 3 bytes");
}

std::map<std::string, TensorData> sample_tensors(const std::vector<float>& f32,
                                                 const std::vector<std::uint16_t>& bf16,
                                                 const std::vector<std::int64_t>& i64) {
  std::map<std::string, TensorData> t;
  t["b.weight"] = {Dtype::kF32, {2, 3}, f32.data(), f32.size() * 4};
  t["a.bias"] = {Dtype::kBF16, {4}, bf16.data(), bf16.size() * 2};
  t["z.index"] = {Dtype::kI64, {2}, i64.data(), i64.size() * 8};
  t["a.weight"] = {Dtype::kF32, {0, 3}, f32.data(), 0};
  return t;
}

TEST(Safetensors, HeaderLayoutFollowsTheReferenceWriter) {
  const float one = 1.0f;
  const std::uint16_t half = 0x3c00;
  std::map<std::string, TensorData> t;
  t["b"] = {Dtype::kF32, {}, &one, 4};
  t["a"] = {Dtype::kF16, {1}, &half, 2};
  t["c"] = {Dtype::kF32, {1}, &one, 4};
  const std::string bytes = serialize_header(t, {{"format", "pt"}});
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}})";
  const std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes, le64(padded.size()) + padded);
  EXPECT_EQ(padded.size() % 8, 0u);
  // Bad input to the writer.
  const float two[2] = {1, 2};
  std::map<std::string, TensorData> bad;
  bad["w"] = {Dtype::kF32, {3}, two, 8};
  EXPECT_THROW_WITH(serialize_header(bad, {}), Error,
                    "tensor 'w' has 8 bytes but its shape and dtype need 12");
}

TEST(Safetensors, RoundTripKeepsBytes) {
  test::TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
  const std::vector<std::uint16_t> bf16 = {0x3f80, 0xbf80, 0x7f80, 0x0001};
  const std::vector<std::int64_t> i64 = {-1, 1LL << 40};
  const auto tensors = sample_tensors(f32, bf16, i64);
  const auto path = dir.file("m.safetensors");
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "quote \" and \xc3\xa9"}});
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.header().header_size % 8, 0u);
  EXPECT_EQ(file.header().metadata.at("note"), "quote \" and \xc3\xa9");
  ASSERT_EQ(file.header().tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const auto v = file.tensor(name);
    EXPECT_EQ(v.info->dtype, t.dtype) << name;
    EXPECT_EQ(v.info->shape, t.shape) << name;
    ASSERT_EQ(v.n_bytes, t.n_bytes) << name;
    EXPECT_EQ(std::memcmp(v.data, t.data, t.n_bytes), 0) << name;
  }
  // I64 sorts before F32 before BF16 (alignment descending), names ascending within.
  EXPECT_EQ(file.header().tensors[0].name, "z.index");
  EXPECT_EQ(file.header().find("a.weight")->begin, 16u);
  EXPECT_EQ(file.header().find("b.weight")->begin, 16u);
  EXPECT_EQ(file.header().find("a.bias")->begin, 40u);
  EXPECT_THROW_WITH(file.tensor("nope"), Error, path + ": no tensor 'nope'");
  // A moved-from file keeps working through its new owner.
  SafetensorsFile moved = SafetensorsFile::open(path);
  SafetensorsFile other = std::move(moved);
  EXPECT_EQ(std::memcmp(other.tensor("b.weight").data, f32.data(), 24), 0);
}

TEST(Safetensors, TruncatedFileIsRefused) {
  test::TempDir dir;
  const std::vector<float> f32 = {1, 2, 3, 4, 5, 6};
  const std::vector<std::uint16_t> bf16 = {1, 2, 3, 4};
  const std::vector<std::int64_t> i64 = {1, 2};
  const auto path = dir.file("m.safetensors");
  write_safetensors(path, sample_tensors(f32, bf16, i64));
  fs::resize_file(path, fs::file_size(path) - 3);
  EXPECT_THROW_WITH(SafetensorsFile::open(path), Error,
                    "tensor 'a.bias': data_offsets [40,48] end beyond the data buffer");
  fs::resize_file(path, 20);
  EXPECT_THROW_WITH(SafetensorsFile::open(path), Error, "but the file has only 12 bytes after the length");
}

// Writes `tensors` (name -> F32 values) into shard `file` of `dir`.
void write_shard(const test::TempDir& dir, const std::string& file,
                 const std::map<std::string, std::vector<float>>& tensors) {
  std::map<std::string, TensorData> data;
  for (const auto& [name, v] : tensors) {
    data[name] = {Dtype::kF32, {static_cast<std::int64_t>(v.size())}, v.data(), v.size() * 4};
  }
  write_safetensors(dir.file(file), data);
}

TEST(Safetensors, ShardedCheckpoint) {
  test::TempDir dir;
  write_shard(dir, "s1.safetensors", {{"a", {1, 2}}, {"b", {3}}});
  write_shard(dir, "s2.safetensors", {{"c", {4, 5, 6}}});
  write_shard_index(dir.file("model.safetensors.index.json"),
                    {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"}}, 24);
  const auto c = Checkpoint::open(dir.path().string());
  EXPECT_EQ(c.format(), CheckpointFormat::kSafetensors);
  EXPECT_EQ(c.names(), std::vector<std::string>({"a", "b", "c"}));
  EXPECT_EQ(c.files(), std::vector<std::string>({dir.file("s1.safetensors"), dir.file("s2.safetensors")}));
  const CheckpointTensor t = c.tensor("c");
  EXPECT_EQ(t.shape, std::vector<std::int64_t>({3}));
  EXPECT_EQ(t.stride, std::vector<std::int64_t>({1}));
  ASSERT_EQ(t.storage.size, 12u);
  float v[3];
  std::memcpy(v, t.storage.data, 12);
  EXPECT_EQ(v[2], 6.0f);
  EXPECT_THROW_WITH(c.tensor("d"), Error, "checkpoint has no tensor 'd'");
  // The index file itself can be given.
  EXPECT_EQ(Checkpoint::open(dir.file("model.safetensors.index.json")).names().size(), 3u);
}

TEST(Safetensors, ShardedCheckpointErrors) {
  const auto index_with = [](const test::TempDir& dir, const std::map<std::string, std::string>& map) {
    write_shard_index(dir.file("model.safetensors.index.json"), map, 0);
    return dir.path().string();
  };
  {  // a shard listed by the index is missing
    test::TempDir dir;
    write_shard(dir, "s1.safetensors", {{"a", {1}}});
    EXPECT_THROW_WITH(Checkpoint::open(index_with(dir, {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}})),
                      Error, "maps 1 tensors (e.g. 'b') to shard 's2.safetensors', which does not exist");
  }
  {  // a tensor in the wrong shard
    test::TempDir dir;
    write_shard(dir, "s1.safetensors", {{"a", {1}}, {"b", {2}}});
    write_shard(dir, "s2.safetensors", {{"c", {3}}});
    EXPECT_THROW_WITH(Checkpoint::open(index_with(
                          dir, {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}, {"c", "s2.safetensors"}})),
                      Error,
                      "tensor 'b' is in shard 's1.safetensors' but weight_map maps it to 's2.safetensors'");
  }
  {  // one tensor in two shards
    test::TempDir dir;
    write_shard(dir, "s1.safetensors", {{"a", {1}}});
    write_shard(dir, "s2.safetensors", {{"a", {1}}, {"c", {3}}});
    EXPECT_THROW_WITH(Checkpoint::open(index_with(dir, {{"a", "s1.safetensors"}, {"c", "s2.safetensors"}})),
                      Error, "tensor 'a' is in two shards, 's1.safetensors' and 's2.safetensors'");
  }
  {  // the index maps a tensor to a shard that lacks it
    test::TempDir dir;
    write_shard(dir, "s1.safetensors", {{"a", {1}}});
    EXPECT_THROW_WITH(Checkpoint::open(index_with(dir, {{"a", "s1.safetensors"}, {"x", "s1.safetensors"}})),
                      Error,
                      "weight_map maps tensor 'x' to shard 's1.safetensors', which does not contain it");
  }
  {  // a shard holds a tensor the index does not list
    test::TempDir dir;
    write_shard(dir, "s1.safetensors", {{"a", {1}}, {"extra", {2}}});
    EXPECT_THROW_WITH(Checkpoint::open(index_with(dir, {{"a", "s1.safetensors"}})), Error,
                      "shard 's1.safetensors' holds tensor 'extra', which weight_map does not list");
  }
  {  // malformed index files
    test::TempDir dir;
    dir.write("model.safetensors.index.json", R"({"metadata": {}})");
    EXPECT_THROW_WITH(Checkpoint::open(dir.path().string()), Error, "no 'weight_map' object");
    dir.write("model.safetensors.index.json", R"({"weight_map": {"a": "../s1.safetensors"}})");
    EXPECT_THROW_WITH(Checkpoint::open(dir.path().string()), Error, "shards must be plain file names");
    dir.write("model.safetensors.index.json",
              R"({"weight_map": {"a": "s.safetensors", "a": "t.safetensors"}})");
    EXPECT_THROW_WITH(Checkpoint::open(dir.path().string()), Error, "weight_map lists tensor 'a' twice");
    dir.write("model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
    EXPECT_THROW_WITH(Checkpoint::open(dir.path().string()), Error, "weight_map['a'] must be a file name");
    dir.write("model.safetensors.index.json", R"({"weight_map": )");
    EXPECT_THROW_WITH(Checkpoint::open(dir.path().string()), Error, "index is not valid JSON");
  }
}

// A directory without weights and a path that does not exist are named; a
// directory's pickle checkpoint is read too (tests/unit/test_torch_bin.cpp).
TEST(Safetensors, CheckpointPathsWithoutWeights) {
  test::TempDir empty;
  EXPECT_THROW_WITH(Checkpoint::open(empty.path().string()), Error,
                    "has none of model.safetensors, model.safetensors.index.json, pytorch_model.bin, "
                    "pytorch_model.bin.index.json");
  EXPECT_THROW_WITH(Checkpoint::open(empty.file("nothing")), Error, "nothing: no such file or directory");
  // A file of any other name is read as safetensors, and its reader says what is wrong.
  empty.write("weights.pt", "PK\x03\x04");
  EXPECT_THROW_WITH(Checkpoint::open(empty.file("weights.pt")), Error, "weights.pt: ");
}

// --- LibTorch side ------------------------------------------------------------

TEST(Weights, LoadConvertsDtypes) {
  test::TempDir dir;
  // bf16 bit patterns of 1, -2, 0.5, 3 and an unaligned F32 (header length 3).
  const std::vector<std::uint16_t> bf16 = {0x3f80, 0xc000, 0x3f00, 0x4040};
  std::map<std::string, TensorData> t;
  t["w"] = {Dtype::kBF16, {2, 2}, bf16.data(), 8};
  write_safetensors(dir.file("model.safetensors"), t);
  const auto w = load_weights(dir.path().string());
  EXPECT_EQ(w.at("w").scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(w.at("w"), torch::tensor({{1.0f, -2.0f}, {0.5f, 3.0f}})));
  EXPECT_EQ(load_weights(dir.path().string(), torch::kFloat16).at("w").scalar_type(), torch::kFloat16);
  const auto as_bf16 = load_weights(dir.path().string(), torch::kBFloat16).at("w");
  EXPECT_EQ(as_bf16.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(std::memcmp(as_bf16.data_ptr(), bf16.data(), 8), 0);

  const float values[2] = {0.25f, -7.5f};
  std::string buffer(reinterpret_cast<const char*>(values), 8);
  const auto path = dir.write("unaligned.safetensors",
                              image(R"({"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )", buffer));
  ASSERT_NE((8 + std::string(R"({"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )").size()) % 4, 0u);
  const auto u = load_weights(path, torch::kFloat64).at("u");
  EXPECT_EQ(u[1].item<double>(), -7.5);

  std::map<std::string, TensorData> ints;
  const std::int64_t i[1] = {3};
  ints["i"] = {Dtype::kI64, {1}, i, 8};
  write_safetensors(dir.file("ints.safetensors"), ints);
  EXPECT_THROW_WITH(load_weights(dir.file("ints.safetensors")), Error,
                    "tensor 'i' has dtype I64; weights must be F32, F16, BF16 or F64");
}

TEST(Weights, SaveAndLoadRoundTrip) {
  test::TempDir dir;
  torch::manual_seed(3);
  WeightMap w;
  w["model.norm.weight"] = torch::randn({5});
  w["lm_head.weight"] = torch::randn({7, 5}).to(torch::kBFloat16);
  w["x"] = torch::randn({4, 6}).t();  // not contiguous
  w["scalar"] = torch::tensor(2.5, torch::kFloat64);
  save_weights(dir.file("model.safetensors"), w, {{"source", "test"}});
  const auto file = SafetensorsFile::open(dir.file("model.safetensors"));
  EXPECT_EQ(file.header().metadata.at("format"), "pt");
  EXPECT_EQ(file.header().metadata.at("source"), "test");
  EXPECT_EQ(file.header().find("lm_head.weight")->dtype, Dtype::kBF16);
  const auto back = load_weights(dir.path().string(), torch::kFloat64);
  ASSERT_EQ(back.size(), w.size());
  for (const auto& [name, t] : w) EXPECT_TRUE(torch::equal(back.at(name), t.to(torch::kFloat64))) << name;

  // Sharded: 3 shards of at most 64 bytes (a 70-byte tensor alone), an index, and the same tensors back.
  const auto sharded = (dir.path() / "sharded").string();
  save_weights_sharded(sharded, w, 64);
  EXPECT_TRUE(fs::exists(sharded + "/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(sharded + "/model-00001-of-00003.safetensors"));
  const auto back2 = load_weights(sharded, torch::kFloat64);
  for (const auto& [name, t] : w) EXPECT_TRUE(torch::equal(back2.at(name), t.to(torch::kFloat64))) << name;
  // Everything in one shard: a plain model.safetensors.
  save_weights_sharded((dir.path() / "one").string(), w, 1 << 20);
  EXPECT_TRUE(fs::exists(dir.path() / "one" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir.path() / "one" / "model.safetensors.index.json"));
}

WeightMap weights_for(const ModelConfig& config) {
  WeightMap w;
  for (const auto& [name, shape] : expected_tensor_shapes(config)) w[name] = torch::zeros(shape);
  return w;
}

TEST(Weights, CheckAgainstConfig) {
  auto config = ModelConfig::tiny(Family::kLlama, 100);
  auto w = weights_for(config);
  EXPECT_EQ(w.size(), 9u * 2 + 3);
  EXPECT_TRUE(weight_problems(config, w).empty());
  check_weights(config, w);
  w["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::zeros({8});  // legacy buffer: ignored
  EXPECT_TRUE(weight_problems(config, w).empty());

  w.erase("model.layers.1.mlp.up_proj.weight");
  w["model.layers.0.self_attn.k_proj.weight"] = torch::zeros({64, 64});
  w["model.layers.2.mlp.up_proj.weight"] = torch::zeros({1});
  const auto problems = weight_problems(config, w);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0], "wrong shape model.layers.0.self_attn.k_proj.weight: [64, 64], expected [32, 64]");
  EXPECT_EQ(problems[1], "missing model.layers.1.mlp.up_proj.weight [128, 64]");
  EXPECT_EQ(problems[2], "unexpected model.layers.2.mlp.up_proj.weight [1]");
  EXPECT_THROW_WITH(check_weights(config, w), Error, "the checkpoint does not fit config.json (3 problems)");

  // lm_head may be absent only when tied.
  auto untied = weights_for(config);
  untied.erase("lm_head.weight");
  EXPECT_EQ(weight_problems(config, untied), std::vector<std::string>({"missing lm_head.weight [100, 64]"}));
  config.tie_word_embeddings = true;
  EXPECT_TRUE(weight_problems(config, untied).empty());
  untied["lm_head.weight"] = torch::zeros({100, 64});
  EXPECT_TRUE(weight_problems(config, untied).empty());
}

// --- exchange with the independent Python reader/writer -------------------------

// The values both sides agree on: element k of tensor t is k * 0.5 - 3 (exact in
// every float dtype used) except for the integer tensor.
TEST(SafetensorsGolden, WriteForPython) {
  const char* out = std::getenv("SENSECF_ST_GOLDEN_DIR");
  if (!out) GTEST_SKIP() << "driven by tests/python/test_safetensors_golden.py";
  WeightMap w;
  w["model.embed_tokens.weight"] = torch::arange(12, torch::kFloat32).reshape({3, 4}) * 0.5 - 3;
  w["model.norm.weight"] = (torch::arange(5, torch::kFloat32) * 0.5 - 3).to(torch::kBFloat16);
  w["lm_head.weight"] = (torch::arange(6, torch::kFloat32).reshape({2, 3}) * 0.5 - 3).to(torch::kFloat16);
  w["x.f64"] = torch::arange(3, torch::kFloat64) * 0.5 - 3;
  w["x.i64"] = torch::tensor({std::int64_t{-5}, std::int64_t{1} << 40, std::int64_t{7}}, torch::kInt64);
  w["x.empty"] = torch::zeros({0, 4});
  w["x.scalar"] = torch::tensor(-3.0f);
  save_weights(std::string(out) + "/ours.safetensors", w, {{"writer", "sensecf"}});
  save_weights_sharded(std::string(out) + "/ours_sharded", w, 40);
}

TEST(SafetensorsGolden, ReadFromPython) {
  const char* in = std::getenv("SENSECF_ST_GOLDEN_DIR");
  if (!in) GTEST_SKIP() << "driven by tests/python/test_safetensors_golden.py";
  const std::string path = std::string(in) + "/python.safetensors";
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.header().metadata.at("writer"), "python");
  const auto w = load_weights(path, torch::kFloat64);
  EXPECT_TRUE(torch::equal(w.at("p.f32"), torch::arange(6, torch::kFloat64).reshape({2, 3}) * 0.5 - 3));
  EXPECT_TRUE(torch::equal(w.at("p.f16"), torch::arange(4, torch::kFloat64) * 0.5 - 3));
  EXPECT_TRUE(torch::equal(w.at("p.bf16"), torch::arange(8, torch::kFloat64).reshape({2, 2, 2}) * 0.5 - 3));
  EXPECT_EQ(w.at("p.scalar").item<double>(), -3.0);
}

}  // namespace
}  // namespace sensecf::llm
