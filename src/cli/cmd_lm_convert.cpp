// `sensecf lm convert`: rewrite a Hugging Face model directory's weights as
// safetensors, laid out as save_pretrained does (model.safetensors, or shards
// model-0000i-of-0000n.safetensors behind model.safetensors.index.json), and
// copy the config and tokenizer files next to them. Made for checkpoints that
// ship only pytorch_model.bin (BioMistral-7B): convert once, then load the
// safetensors directory (mmap, no pickle at all).
//   sensecf lm convert --model BioMistral-7B --out BioMistral-7B-st [--max-shard-size 5GB] [--dtype bfloat16]
// The input is read from its file mapping without copying (map_weights); only a
// --dtype change or a strided view makes copies. The output is verified by
// opening it again and comparing every tensor's name, dtype and shape. Names
// are kept as they are (no renaming, no dropping of tied weights).
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/io/checkpoint.h"
#include "sensecf/llm/io/weights.h"

namespace sensecf::cli {
namespace {

namespace fs = std::filesystem;

// The files save_pretrained / the tokenizer write next to the weights.
const char* const kCopiedFiles[] = {"config.json",           "generation_config.json",  "tokenizer.json",
                                    "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"};

// "5GB" (10^9), "5GiB" (2^30), "500MB", "1000000": transformers' convert_file_size_to_int.
std::uint64_t parse_size(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  std::string unit = text.substr(digits);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::pair<const char*, double> units[] = {
      {"", 1},      {"B", 1},        {"KB", 1e3},        {"MB", 1e6},           {"GB", 1e9},
      {"TB", 1e12}, {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
  double value = 0;
  try {
    std::size_t used = 0;
    value = digits ? std::stod(text.substr(0, digits), &used) : 0;
    if (used != digits) value = 0;
  } catch (const std::exception&) {
    value = 0;
  }
  for (const auto& [name, factor] : units) {
    if (unit == name && value > 0) return static_cast<std::uint64_t>(value * factor);
  }
  throw UsageError("--max-shard-size: '" + text + "' is not a size",
                   "give bytes or a number with a unit: 5GB (10^9 bytes), 4GiB (2^30), 500MB");
}

std::string gigabytes(std::uint64_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.3f GB", static_cast<double>(bytes) / 1e9);
  return s;
}

bool is_empty_directory(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::directory_iterator(dir, ec) == fs::directory_iterator();
}

// Weight files of an earlier conversion that would shadow or confuse the new
// one (a stale model.safetensors wins over a new index).
void remove_old_weights(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool weights = name == "model.safetensors.index.json" ||
                         (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0);
    if (weights && entry.is_regular_file()) {
      spdlog::info("--force: removing {}", entry.path().string());
      fs::remove(entry.path());
    }
  }
}

// The safetensors name of a tensor's dtype, for the verification.
std::string safetensors_dtype(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float:
      return "F32";
    case c10::ScalarType::Half:
      return "F16";
    case c10::ScalarType::BFloat16:
      return "BF16";
    case c10::ScalarType::Double:
      return "F64";
    case c10::ScalarType::Long:
      return "I64";
    case c10::ScalarType::Int:
      return "I32";
    case c10::ScalarType::Short:
      return "I16";
    case c10::ScalarType::Char:
      return "I8";
    case c10::ScalarType::Byte:
      return "U8";
    case c10::ScalarType::Bool:
      return "BOOL";
    default:
      return "?";
  }
}

std::string dtype_label(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float:
      return "float32";
    case c10::ScalarType::BFloat16:
      return "bfloat16";
    case c10::ScalarType::Half:
      return "float16";
    default:
      return "";
  }
}

// Copies the config and tokenizer files; with a new dtype, config.json's
// torch_dtype (and the newer `dtype`) says it, as save_pretrained writes it.
void copy_side_files(const fs::path& from, const fs::path& to, const std::string& new_dtype) {
  for (const char* name : kCopiedFiles) {
    if (!fs::exists(from / name)) {
      if (std::string(name) == "config.json")
        spdlog::warn("{} has no config.json; the output cannot be loaded as a model", from.string());
      continue;
    }
    if (std::string(name) == "config.json" && !new_dtype.empty()) {
      std::ifstream in(from / name);
      nlohmann::ordered_json config;
      try {
        config = nlohmann::ordered_json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        throw Error((from / name).string() + " is not valid JSON: " + e.what(),
                    "fix or download the file again, or pass --dtype keep to copy it as it is");
      }
      config["torch_dtype"] = new_dtype;
      if (config.contains("dtype")) config["dtype"] = new_dtype;
      std::ofstream out(to / name);
      out << config.dump(2) << "\n";
      if (!out) throw Error("cannot write " + (to / name).string(), "is the disk full?");
      continue;
    }
    std::error_code ec;
    fs::copy_file(from / name, to / name, fs::copy_options::overwrite_existing, ec);
    if (ec)
      throw Error("cannot copy " + (from / name).string() + " to " + to.string() + ": " + ec.message(),
                  "is --out writable and the disk not full?");
  }
}

}  // namespace

int cmd_lm_convert(const std::vector<std::string>& args) {
  LogOptions log;
  std::string model, out, max_shard_size = "5GB", dtype = "keep";
  bool force = false;
  Options options(
      "lm convert",
      "Write a model directory's weights (pytorch_model.bin or safetensors, single or sharded) as\n"
      "safetensors in save_pretrained's layout, and copy config.json and the tokenizer files:\n"
      "  sensecf lm convert --model BioMistral-7B --out BioMistral-7B-safetensors");
  options.add("lm.model", &model, "Hugging Face model directory (or one .bin / .safetensors file)", "model");
  options.add("lm.out", &out, "output directory (created; must be empty unless --force)", "out");
  options.add("lm.max_shard_size", &max_shard_size, "largest shard, e.g. 5GB (10^9 bytes) or 4GiB",
              "max-shard-size");
  options.add("lm.dtype", &dtype, "dtype of the floating-point weights written", "dtype")
      .choices({"keep", "float32", "bfloat16", "float16"});
  options.add("lm.force", &force, "write into a non-empty --out, replacing its weight files", "force");
  options.add_check([&] {
    if (model.empty()) throw UsageError("--model is required", "pass the model directory to convert");
    if (out.empty())
      throw UsageError("--out is required", "pass a new directory for the safetensors checkpoint");
    parse_size(max_shard_size);
  });
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const std::uint64_t max_shard_bytes = parse_size(max_shard_size);
  std::error_code ec;
  if (!fs::exists(model, ec))
    throw UsageError("--model: " + model + ": no such file or directory",
                     "pass the model directory to convert (or one .bin / .safetensors file)");
  const fs::path source_dir = fs::is_directory(model, ec)         ? fs::path(model)
                              : fs::path(model).has_parent_path() ? fs::path(model).parent_path()
                                                                  : fs::path(".");
  if (fs::exists(out, ec) && fs::equivalent(source_dir, out, ec)) {
    throw UsageError("--out is the --model directory", "write the converted checkpoint to a new directory");
  }
  if (fs::exists(out, ec) && !is_empty_directory(out)) {
    if (!fs::is_directory(out, ec))
      throw UsageError("--out: " + out + " exists and is not a directory",
                       "pass a new directory for the safetensors checkpoint");
    if (!force) {
      throw UsageError("--out: " + out + " is not empty",
                       "choose a new directory, or pass --force to replace the weight files in it");
    }
    remove_old_weights(out);
  }

  const auto start = std::chrono::steady_clock::now();
  llm::WeightMap weights = llm::map_weights(model);
  if (weights.empty())
    throw Error(
        model + ": the checkpoint holds no tensors",
        "is the download complete? A model directory holds pytorch_model*.bin or *.safetensors files");
  std::string new_dtype;
  if (dtype != "keep") {
    const c10::ScalarType target = dtype == "float32"    ? c10::ScalarType::Float
                                   : dtype == "bfloat16" ? c10::ScalarType::BFloat16
                                                         : c10::ScalarType::Half;
    new_dtype = dtype_label(target);
    for (auto& [name, t] : weights) {
      if (c10::isFloatingType(t.scalar_type())) t = t.to(target);
    }
  }
  std::uint64_t total = 0;
  for (const auto& [name, t] : weights) total += static_cast<std::uint64_t>(t.numel()) * t.element_size();
  llm::save_weights_sharded(out, weights, max_shard_bytes);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  copy_side_files(source_dir, out, new_dtype);

  // Verify: the output opens (every header and the index re-validated) and
  // holds exactly the tensors written, with their dtypes and shapes.
  const auto written = llm::Checkpoint::open(out);
  const auto names = written.names();
  if (names.size() != weights.size()) {
    throw Error(
        "verification of " + out + " failed: it holds " + std::to_string(names.size()) + " tensors, " +
            std::to_string(weights.size()) + " were written",
        "delete --out and run the conversion again; is the disk full or another process writing to it?");
  }
  for (const auto& name : names) {
    const auto it = weights.find(name);
    const auto view = written.tensor(name);
    if (it == weights.end() || view.shape != it->second.sizes().vec() ||
        llm::dtype_name(view.dtype) != safetensors_dtype(it->second.scalar_type())) {
      throw Error(
          "verification of " + out + " failed: tensor '" + name + "' differs from the one written",
          "delete --out and run the conversion again; is the disk full or another process writing to it?");
    }
  }
  const std::size_t n_files = written.files().size();
  spdlog::info("converted {} tensors ({}) from {} to {} ({} file{}) in {:.2f} s ({:.2f} GB/s); verified",
               names.size(), gigabytes(total), model, out, n_files, n_files == 1 ? "" : "s", seconds,
               seconds > 0 ? static_cast<double>(total) / 1e9 / seconds : 0.0);
  return 0;
}

}  // namespace sensecf::cli
