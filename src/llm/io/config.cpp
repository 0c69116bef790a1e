// config.json <-> ModelConfig, expected tensor shapes and RoPE frequencies
// (see config.h). Defaults for absent keys are those of transformers'
// LlamaConfig / MistralConfig.
#include "sensecf/llm/io/config.h"

#include <cstdint>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "json_show.h"

namespace sensecf::llm {
namespace {

using nlohmann::json;

std::string show(const json& v) { return detail::json_show(v); }

// Reads the typed fields of one JSON object, naming `where` in errors.
class Fields {
 public:
  Fields(const json& object, std::string where) : j_(object), where_(std::move(where)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  bool present(const char* key) const { return j_.contains(key); }  // null included

  std::int64_t integer(const char* key) const {
    if (!has(key)) fail(key, "is required");
    const json& v = j_.at(key);
    if (!v.is_number_integer()) fail(key, "must be an integer, found " + show(v));
    return v.get<std::int64_t>();
  }
  std::int64_t integer(const char* key, std::int64_t fallback) const {
    return has(key) ? integer(key) : fallback;
  }

  double number(const char* key) const {
    if (!has(key)) fail(key, "is required");
    const json& v = j_.at(key);
    if (!v.is_number()) fail(key, "must be a number, found " + show(v));
    return v.get<double>();
  }
  double number(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }

  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(key, "must be true or false, found " + show(v));
    return v.get<bool>();
  }

  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_string()) fail(key, "must be a string, found " + show(v));
    return v.get<std::string>();
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what,
                         const std::string& hint = {}) const {
    throw UsageError(where_ + ": " + key + " " + what, hint);
  }

 private:
  const json& j_;
  std::string where_;
};

const char* kRefusal = "is not supported; sensecf runs Llama and Mistral checkpoints";

Family family_of(const json& j, const std::string& source) {
  const Fields f(j, source);
  const std::string model_type = f.string("model_type", "");
  std::string architecture;
  if (f.has("architectures")) {
    const json& a = j.at("architectures");
    if (!a.is_array() || a.empty() || !a[0].is_string()) {
      f.fail("architectures", "must be a non-empty list of class names, found " + show(a));
    }
    architecture = a[0].get<std::string>();
  }
  if (model_type.empty() && architecture.empty()) {
    throw UsageError(source + ": neither model_type nor architectures is given",
                     "is this a Hugging Face transformers config.json?");
  }
  auto family_of_arch = [](const std::string& a) -> int {
    if (a == "LlamaForCausalLM") return 0;
    if (a == "MistralForCausalLM") return 1;
    return -1;
  };
  auto family_of_type = [](const std::string& t) -> int {
    if (t == "llama") return 0;
    if (t == "mistral") return 1;
    return -1;
  };
  const int by_arch = architecture.empty() ? -2 : family_of_arch(architecture);
  const int by_type = model_type.empty() ? -2 : family_of_type(model_type);
  if (by_arch == -1 || by_type == -1) {
    throw UsageError(source + ": architecture '" + (architecture.empty() ? "?" : architecture) +
                         "' (model_type '" + (model_type.empty() ? "?" : model_type) + "') " + kRefusal,
                     "use a LlamaForCausalLM or MistralForCausalLM checkpoint (model_type llama or mistral)");
  }
  if (by_arch >= 0 && by_type >= 0 && by_arch != by_type) {
    throw UsageError(
        source + ": architecture '" + architecture + "' disagrees with model_type '" + model_type + "'",
        "config.json was edited or mixed from two models; download it again from the model's "
        "repository");
  }
  return (by_arch >= 0 ? by_arch : by_type) == 0 ? Family::kLlama : Family::kMistral;
}

RopeScaling parse_rope_scaling(const json& j, const std::string& source) {
  RopeScaling r;
  if (!j.contains("rope_scaling") || j.at("rope_scaling").is_null()) return r;
  const json& s = j.at("rope_scaling");
  const std::string where = source + ": rope_scaling";
  if (!s.is_object())
    throw UsageError(where + " must be an object or null, found " + show(s),
                     "e.g. \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}, or null for none");
  const Fields f(s, where);
  // transformers accepts the legacy key `type` as an alias of `rope_type`.
  const std::string type = f.has("rope_type") ? f.string("rope_type", "") : f.string("type", "");
  if (type.empty())
    throw UsageError(where + " has neither rope_type nor type",
                     "add \"rope_type\": \"default\", \"linear\" or \"llama3\"");
  if (type == "default") return r;
  if (type == "linear") {
    r.type = RopeType::kLinear;
    r.factor = f.number("factor");
    if (!(r.factor > 0)) f.fail("factor", "must be positive, found " + std::to_string(r.factor));
    return r;
  }
  if (type == "llama3") {
    r.type = RopeType::kLlama3;
    r.factor = f.number("factor");
    r.low_freq_factor = f.number("low_freq_factor");
    r.high_freq_factor = f.number("high_freq_factor");
    r.original_max_position_embeddings = f.integer("original_max_position_embeddings");
    if (!(r.factor > 0)) f.fail("factor", "must be positive, found " + std::to_string(r.factor));
    if (!(r.low_freq_factor > 0) || !(r.high_freq_factor > r.low_freq_factor)) {
      f.fail("low_freq_factor/high_freq_factor", "must satisfy 0 < low_freq_factor < high_freq_factor");
    }
    if (r.original_max_position_embeddings <= 0)
      f.fail("original_max_position_embeddings", "must be positive");
    return r;
  }
  throw UsageError(where + " type '" + type + "' is not supported",
                   "sensecf implements default, linear and llama3");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot open " + path, "a model directory holds config.json next to its weights");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

const char* family_name(Family family) { return family == Family::kLlama ? "llama" : "mistral"; }

Family parse_family(const std::string& name) {
  if (name == "llama") return Family::kLlama;
  if (name == "mistral") return Family::kMistral;
  throw UsageError("unknown model family '" + name + "'", "use llama or mistral");
}

ModelConfig ModelConfig::from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw UsageError(source + ": not valid JSON: " + e.what(),
                     "is the file truncated? Download config.json again from the model's repository");
  }
  if (!j.is_object())
    throw UsageError(source + ": not a JSON object", "is this a Hugging Face transformers config.json?");
  const Fields f(j, source);
  ModelConfig c;
  c.family = family_of(j, source);
  const bool mistral = c.family == Family::kMistral;

  if (f.boolean("attention_bias", false)) {
    f.fail("attention_bias",
           "is true; sensecf's decoder has no attention biases (Llama/Mistral checkpoints have none)");
  }
  if (f.boolean("mlp_bias", false)) f.fail("mlp_bias", "is true; sensecf's decoder has no MLP biases");
  const std::string act = f.string("hidden_act", "silu");
  if (act != "silu") f.fail("hidden_act", "is '" + act + "'; only silu (SwiGLU) is supported");

  c.vocab_size = f.integer("vocab_size");
  c.hidden_size = f.integer("hidden_size");
  c.intermediate_size = f.integer("intermediate_size");
  c.num_hidden_layers = f.integer("num_hidden_layers");
  c.num_attention_heads = f.integer("num_attention_heads");
  c.num_key_value_heads = f.integer("num_key_value_heads", c.num_attention_heads);
  if (f.has("head_dim")) {
    c.head_dim = f.integer("head_dim");
  } else {
    if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0) {
      f.fail("hidden_size", "(" + std::to_string(c.hidden_size) +
                                ") is not a multiple of num_attention_heads (" +
                                std::to_string(c.num_attention_heads) + ") and head_dim is not given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
  c.rope_theta = f.number("rope_theta", 10000.0);
  c.rope_scaling = parse_rope_scaling(j, source);
  if (mistral) c.sliding_window = f.present("sliding_window") ? f.integer("sliding_window", 0) : 4096;
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.max_position_embeddings = f.integer("max_position_embeddings", mistral ? 4096 * 32 : 2048);
  c.bos_token_id = j.contains("bos_token_id") ? f.integer("bos_token_id", -1) : 1;
  if (!j.contains("eos_token_id")) {
    c.eos_token_ids = {2};
  } else if (j.at("eos_token_id").is_array()) {
    for (const auto& v : j.at("eos_token_id")) {
      if (!v.is_number_integer())
        f.fail("eos_token_id", "must be an integer or a list of integers, found " + show(v));
      c.eos_token_ids.push_back(v.get<std::int64_t>());
    }
  } else if (f.has("eos_token_id")) {
    c.eos_token_ids = {f.integer("eos_token_id")};
  }
  c.torch_dtype = f.has("torch_dtype") ? f.string("torch_dtype", "") : f.string("dtype", "");
  c.validate(source);
  return c;
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* key, std::int64_t v) {
    if (v <= 0)
      throw UsageError(source + ": " + key + " must be positive, found " + std::to_string(v),
                       std::string("set ") + key + " to the value of the model's original config.json");
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_attention_heads % num_key_value_heads != 0) {
    throw UsageError(
        source + ": num_attention_heads (" + std::to_string(num_attention_heads) +
            ") is not a multiple of num_key_value_heads (" + std::to_string(num_key_value_heads) + ")",
        "grouped-query attention shares each key/value head among an equal number of query heads; "
        "check both values against the model's original config.json");
  }
  if (head_dim % 2 != 0)
    throw UsageError(
        source + ": head_dim (" + std::to_string(head_dim) + ") must be even for RoPE",
        "head_dim is hidden_size / num_attention_heads unless config.json gives it; choose sizes that "
        "make it even");
  if (!(rms_norm_eps > 0))
    throw UsageError(source + ": rms_norm_eps must be positive, found " + std::to_string(rms_norm_eps),
                     "Llama and Mistral use 1e-5 or 1e-6");
  if (!(rope_theta > 0))
    throw UsageError(source + ": rope_theta must be positive, found " + std::to_string(rope_theta),
                     "e.g. 10000 (Llama 2), 500000 (Llama 3) or 1000000 (Mistral)");
  if (sliding_window < 0)
    throw UsageError(
        source + ": sliding_window must be positive or null, found " + std::to_string(sliding_window),
        "e.g. \"sliding_window\": 4096, or null for full attention");
}

namespace {

// config.json of meta-llama/Llama-3.1-8B-Instruct and BioMistral/BioMistral-7B
// (reference: llm.md 1.1 and 1.4), as published.
const std::map<std::string, const char*>& presets() {
  static const std::map<std::string, const char*> table = {
      {"llama-3.1-8b", R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 128,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256})"},
      {"biomistral-7b", R"({
  "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32000})"},
  };
  return table;
}

}  // namespace

ModelConfig ModelConfig::preset(const std::string& name) {
  const auto it = presets().find(name);
  if (it == presets().end()) {
    throw UsageError("unknown model preset '" + name + "'", "known presets: " + join(preset_names(), ", ") +
                                                                 " (or pass a config.json path)");
  }
  return from_json(it->second, "preset " + name);
}

std::vector<std::string> ModelConfig::preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, text] : presets()) names.push_back(name);
  return names;
}

ModelConfig ModelConfig::tiny(Family family, std::int64_t vocab_size) {
  ModelConfig c;
  c.family = family;
  c.vocab_size = vocab_size;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.rms_norm_eps = 1e-5;
  c.max_position_embeddings = 4096;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";
  if (family == Family::kLlama) {
    // Real Llama-3.1 numbers: with head_dim 16 the 8 frequencies fall in all
    // three llama3 bands (4 kept, 1 smoothed, 3 divided by the factor).
    c.rope_theta = 500000.0;
    c.rope_scaling.type = RopeType::kLlama3;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 8192;
  } else {
    c.rope_theta = 10000.0;
    c.sliding_window = 16;
  }
  c.validate("tiny config");
  return c;
}

std::string ModelConfig::to_json() const {
  nlohmann::ordered_json j;
  const bool llama = family == Family::kLlama;
  j["architectures"] = {llama ? "LlamaForCausalLM" : "MistralForCausalLM"};
  j["model_type"] = family_name(family);
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  if (llama) j["mlp_bias"] = false;
  j["bos_token_id"] = bos_token_id >= 0 ? nlohmann::ordered_json(bos_token_id) : nlohmann::ordered_json();
  if (eos_token_ids.size() == 1) {
    j["eos_token_id"] = eos_token_ids.front();
  } else if (eos_token_ids.empty()) {
    j["eos_token_id"] = nullptr;
  } else {
    j["eos_token_id"] = eos_token_ids;
  }
  j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["num_attention_heads"] = num_attention_heads;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_key_value_heads"] = num_key_value_heads;
  j["rms_norm_eps"] = rms_norm_eps;
  switch (rope_scaling.type) {
    case RopeType::kDefault:
      j["rope_scaling"] = nullptr;
      break;
    case RopeType::kLinear:
      j["rope_scaling"] = {{"factor", rope_scaling.factor}, {"rope_type", "linear"}};
      break;
    case RopeType::kLlama3:
      j["rope_scaling"] = {
          {"factor", rope_scaling.factor},
          {"high_freq_factor", rope_scaling.high_freq_factor},
          {"low_freq_factor", rope_scaling.low_freq_factor},
          {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings},
          {"rope_type", "llama3"}};
      break;
  }
  j["rope_theta"] = rope_theta;
  if (!llama)
    j["sliding_window"] =
        sliding_window > 0 ? nlohmann::ordered_json(sliding_window) : nlohmann::ordered_json();
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = torch_dtype.empty() ? "float32" : torch_dtype;
  j["use_cache"] = true;
  j["vocab_size"] = vocab_size;
  return j.dump(2) + "\n";
}

ModelConfig load_config(const std::string& path) {
  std::error_code ec;
  const std::string file =
      std::filesystem::is_directory(path, ec) ? (std::filesystem::path(path) / "config.json").string() : path;
  return ModelConfig::from_json(read_text(file), file);
}

std::vector<int> read_generation_eos(const std::string& model_dir) {
  const std::string file = (std::filesystem::path(model_dir) / "generation_config.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return {};
  json j;
  try {
    j = json::parse(read_text(file));
  } catch (const json::exception& e) {
    throw UsageError(file + ": not valid JSON: " + e.what(), "delete or fix the file; it is optional");
  }
  if (!j.is_object())
    throw UsageError(file + ": not a JSON object", "delete or fix the file; it is optional");
  if (!j.contains("eos_token_id") || j.at("eos_token_id").is_null()) return {};
  const json& eos = j.at("eos_token_id");
  const Fields f(j, file);
  const char* expected = "must be a non-negative integer or a list of them, found ";
  std::vector<int> ids;
  for (const json& v : eos.is_array() ? eos : json::array({eos})) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
        v.get<std::int64_t>() > std::numeric_limits<int>::max())
      f.fail("eos_token_id", expected + show(eos));
    ids.push_back(static_cast<int>(v.get<std::int64_t>()));
  }
  return ids;
}

std::map<std::string, std::vector<std::int64_t>> expected_tensor_shapes(const ModelConfig& c) {
  const std::int64_t V = c.vocab_size, E = c.hidden_size, I = c.intermediate_size;
  const std::int64_t QD = c.num_attention_heads * c.head_dim, KD = c.num_key_value_heads * c.head_dim;
  std::map<std::string, std::vector<std::int64_t>> shapes;
  shapes["model.embed_tokens.weight"] = {V, E};
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    shapes[p + "input_layernorm.weight"] = {E};
    shapes[p + "self_attn.q_proj.weight"] = {QD, E};
    shapes[p + "self_attn.k_proj.weight"] = {KD, E};
    shapes[p + "self_attn.v_proj.weight"] = {KD, E};
    shapes[p + "self_attn.o_proj.weight"] = {E, QD};
    shapes[p + "post_attention_layernorm.weight"] = {E};
    shapes[p + "mlp.gate_proj.weight"] = {I, E};
    shapes[p + "mlp.up_proj.weight"] = {I, E};
    shapes[p + "mlp.down_proj.weight"] = {E, I};
  }
  shapes["model.norm.weight"] = {E};
  if (!c.tie_word_embeddings) shapes["lm_head.weight"] = {V, E};
  return shapes;
}

namespace {
std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}
}  // namespace

std::vector<std::string> tensor_shape_problems(
    const ModelConfig& config, const std::map<std::string, std::vector<std::int64_t>>& found) {
  auto expected = expected_tensor_shapes(config);
  std::vector<std::string> problems;
  for (const auto& [name, shape] : expected) {
    const auto it = found.find(name);
    if (it == found.end()) {
      problems.push_back("missing " + name + " " + shape_text(shape));
    } else if (it->second != shape) {
      problems.push_back("wrong shape " + name + ": " + shape_text(it->second) + ", expected " +
                         shape_text(shape));
    }
  }
  if (config.tie_word_embeddings) expected["lm_head.weight"] = {config.vocab_size, config.hidden_size};
  for (const auto& [name, shape] : found) {
    if (expected.count(name)) {
      if (name == "lm_head.weight" && config.tie_word_embeddings && shape != expected[name]) {
        problems.push_back("wrong shape " + name + ": " + shape_text(shape) + ", expected " +
                           shape_text(expected[name]));
      }
      continue;
    }
    if (ends_with(name, ".rotary_emb.inv_freq")) continue;
    problems.push_back("unexpected " + name + " " + shape_text(shape));
  }
  return problems;
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const std::int64_t dim = c.head_dim;
  const auto& s = c.rope_scaling;
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(dim / 2));
  for (std::int64_t i = 0; i < dim; i += 2) {
    // default: 1 / base^(arange(0, dim, 2) / dim)
    double inv = 1.0 / std::pow(c.rope_theta, static_cast<double>(i) / static_cast<double>(dim));
    if (s.type == RopeType::kLinear) {
      inv /= s.factor;
    } else if (s.type == RopeType::kLlama3) {
      const double old_context = static_cast<double>(s.original_max_position_embeddings);
      const double low_freq_wavelen = old_context / s.low_freq_factor;
      const double high_freq_wavelen = old_context / s.high_freq_factor;
      const double wavelen = 2 * M_PI / inv;
      const double scaled = wavelen > low_freq_wavelen ? inv / s.factor : inv;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const double smooth =
            (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        inv = (1 - smooth) * scaled / s.factor + smooth * scaled;
      } else {
        inv = scaled;
      }
    }
    out.push_back(static_cast<float>(inv));
  }
  return out;
}

}  // namespace sensecf::llm
