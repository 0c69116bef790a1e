// adapter_config.json <-> LoraConfig, target resolution and the adapter's
// tensor names (see adapter.h). The matching rules follow huggingface/peft:
// tuners_utils.check_target_module_exists (target_modules, exclude_modules,
// layers_to_transform / layers_pattern), utils.other.get_pattern_key
// (rank_pattern / alpha_pattern) and LoraConfig.__post_init__'s refusals.
// Python regexes are evaluated with std::regex (ECMAScript), which agrees with
// Python's `re` on the patterns adapters use (alternation, classes, `.*`,
// `\d`, non-greedy `*?`); a pattern std::regex cannot compile is refused.
#include "sensecf/llm/lora/adapter.h"

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::llm {
namespace {

using ojson = nlohmann::ordered_json;

// A short rendering of a JSON value for messages; containers are only described
// (rendering them recurses, see json_show.h).
std::string show(const ojson& v) {
  if (v.is_array()) return "a list of " + std::to_string(v.size());
  if (v.is_object()) return "an object";
  std::string s = v.dump(-1, ' ', false, ojson::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Typed reads of adapter_config.json fields; errors name the file and the field.
class Fields {
 public:
  Fields(const ojson& object, std::string source) : j_(object), source_(std::move(source)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const ojson& at(const char* key) const { return j_.at(key); }

  std::int64_t integer(const char* key, std::int64_t fallback) const {
    if (!has(key)) return fallback;
    const ojson& v = j_.at(key);
    if (!v.is_number_integer()) fail(key, "must be an integer, found " + show(v));
    return v.get<std::int64_t>();
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const ojson& v = j_.at(key);
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(key, "must be a number, found " + show(v));
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const ojson& v = j_.at(key);
    if (!v.is_boolean()) fail(key, "must be true or false, found " + show(v));
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const ojson& v = j_.at(key);
    if (!v.is_string()) fail(key, "must be a string, found " + show(v));
    return v.get<std::string>();
  }
  // A list of strings (or, when `allow_string`, a single string returned as a
  // one-element list).
  std::vector<std::string> strings(const char* key, bool allow_string) const {
    std::vector<std::string> out;
    if (!has(key)) return out;
    const ojson& v = j_.at(key);
    if (allow_string && v.is_string()) return {v.get<std::string>()};
    if (!v.is_array()) fail(key, "must be a list of strings, found " + show(v));
    for (const auto& item : v) {
      if (!item.is_string()) fail(key, "must be a list of strings, found an element " + show(item));
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  // A field that must be absent, null, false or empty: anything else is refused.
  void refuse_if_set(const char* key, const std::string& why) const {
    if (!has(key)) return;
    const ojson& v = j_.at(key);
    const bool empty = (v.is_boolean() && !v.get<bool>()) || (v.is_structured() && v.empty());
    if (!empty) fail(key, "is " + show(v) + "; " + why);
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what, const std::string& hint = {}) const {
    throw UsageError(source_ + ": " + key + " " + what, hint);
  }

 private:
  const ojson& j_;
  std::string source_;
};

std::regex compile(const std::string& pattern, const Fields& f, const char* key) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    f.fail(key, "'" + pattern + "' is not a regular expression sensecf can evaluate (" + e.what() + ")",
           "use plain alternations and classes, e.g. .*\\.(q_proj|v_proj)");
  }
}

// get_pattern_key: KEY matches module M when re.match(rf"(.*\.)?({KEY})$", M).
std::regex pattern_key_regex(const std::string& key) { return std::regex("(.*\\.)?(" + key + ")"); }

template <class T>
std::vector<std::pair<std::string, T>> parse_pattern(const Fields& f, const char* key, bool integer) {
  std::vector<std::pair<std::string, T>> out;
  if (!f.has(key)) return out;
  const ojson& v = f.at(key);
  if (!v.is_object()) f.fail(key, "must be an object {module pattern: value}, found " + show(v));
  for (const auto& [pattern, value] : v.items()) {
    const std::string where = std::string(key) + "[\"" + pattern + "\"]";
    if (integer ? !value.is_number_integer() : !value.is_number())
      f.fail(where, std::string("must be ") + (integer ? "an integer" : "a number") + ", found " + show(value));
    if (integer && value.template get<std::int64_t>() <= 0) f.fail(where, "must be positive, found " + show(value));
    try {
      pattern_key_regex(pattern);
    } catch (const std::regex_error& e) {
      f.fail(where, "is not a regular expression sensecf can evaluate (" + std::string(e.what()) + ")");
    }
    out.emplace_back(pattern, value.template get<T>());
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UsageError("cannot open " + path,
                     "a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors "
                     "(PeftModel.save_pretrained, or `sensecf lm init-adapter`)");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// nn.Module names of LlamaForCausalLM / MistralForCausalLM (root excluded), in
// named_modules() order. `linear` marks the layers that can take an adapter.
struct NamedModule {
  std::string name;
  bool linear = false;
  std::int64_t layer = -1;
  std::string kind;
};

std::vector<NamedModule> named_modules(const ModelConfig& c) {
  std::vector<NamedModule> m;
  auto other = [&m](const std::string& name) { m.push_back({name, false, -1, ""}); };
  other("model");
  other("model.embed_tokens");
  other("model.layers");
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    other(p);
    other(p + ".self_attn");
    for (const char* k : {"q_proj", "k_proj", "v_proj", "o_proj"}) m.push_back({p + ".self_attn." + k, true, i, k});
    other(p + ".mlp");
    for (const char* k : {"gate_proj", "up_proj", "down_proj"}) m.push_back({p + ".mlp." + k, true, i, k});
    other(p + ".mlp.act_fn");
    other(p + ".input_layernorm");
    other(p + ".post_attention_layernorm");
  }
  other("model.norm");
  other("model.rotary_emb");
  other("lm_head");
  return m;
}

// The list form of target_modules / exclude_modules: equal, or a suffix after a dot.
bool list_matches(const std::vector<std::string>& names, const std::string& key) {
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& t) { return key == t || ends_with(key, "." + t); });
}

// layers_to_transform: the layer index as PEFT extracts it from the module name.
bool in_transformed_layers(const LoraConfig& c, const std::string& key) {
  std::vector<std::string> patterns;
  if (c.layers_pattern.empty()) {
    patterns.push_back(R"(.*?\.[^.]*\.(\d+)\.)");
  } else {
    for (const auto& p : c.layers_pattern) patterns.push_back(".*?\\." + p + "\\.(\\d+)\\.");
  }
  for (const auto& p : patterns) {
    std::smatch m;
    if (std::regex_search(key, m, std::regex(p), std::regex_constants::match_continuous)) {
      const long long index = std::stoll(m[1].str());
      return std::find(c.layers_to_transform.begin(), c.layers_to_transform.end(), index) !=
             c.layers_to_transform.end();
    }
  }
  return false;
}

bool targeted(const LoraConfig& c, const NamedModule& m) {
  if (!c.exclude_regex.empty() && std::regex_match(m.name, std::regex(c.exclude_regex))) return false;
  if (list_matches(c.exclude_modules, m.name)) return false;
  switch (c.targets) {
    case LoraConfig::Targets::kRegex:
      return std::regex_match(m.name, std::regex(c.target_regex));
    case LoraConfig::Targets::kAllLinear:
      return m.linear;  // every nn.Linear except the output embedding (lm_head)
    case LoraConfig::Targets::kList:
    case LoraConfig::Targets::kDefault: {
      static const std::vector<std::string> kDefaultTargets = {"q_proj", "v_proj"};  // llama and mistral
      const auto& names = c.targets == LoraConfig::Targets::kList ? c.target_modules : kDefaultTargets;
      if (std::find(names.begin(), names.end(), m.name) != names.end()) return true;  // full name: no layer filter
      if (!list_matches(names, m.name)) return false;
      return c.layers_to_transform.empty() || in_transformed_layers(c, m.name);
    }
  }
  return false;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

LoraConfig LoraConfig::from_json(const std::string& text, const std::string& source) {
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::exception& e) {
    throw UsageError(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw UsageError(source + ": not a JSON object");
  const Fields f(j, source);
  LoraConfig c;
  c.source = source;

  if (!f.has("peft_type")) {
    f.fail("peft_type", "is missing", "is this a PEFT adapter_config.json (PeftModel.save_pretrained)?");
  }
  const std::string peft_type = f.string("peft_type", "");
  if (peft_type != "LORA") {
    f.fail("peft_type", "is '" + peft_type + "'; sensecf applies LoRA adapters only (peft_type \"LORA\")");
  }
  c.r = f.integer("r", 8);
  if (c.r <= 0) f.fail("r", "must be positive, found " + std::to_string(c.r));
  c.lora_alpha = f.number("lora_alpha", 8);
  c.use_rslora = f.boolean("use_rslora", false);
  c.lora_dropout = f.number("lora_dropout", 0);

  if (f.boolean("fan_in_fan_out", false)) {
    f.fail("fan_in_fan_out",
           "is true, which is for layers that store weights [in, out] (GPT-2's Conv1D); Llama/Mistral linear "
           "layers are [out, in]",
           "was this adapter made for another architecture?");
  }
  const std::string bias = f.string("bias", "none");
  if (bias != "none") {
    f.fail("bias", "is '" + bias + "'; only \"none\" is supported (the adapter would also change biases)");
  }
  if (f.boolean("use_dora", false)) f.fail("use_dora", "is true; DoRA adapters are not supported, only plain LoRA");
  if (f.boolean("lora_bias", false)) f.fail("lora_bias", "is true; LoRA biases (on lora_B) are not supported");
  if (f.boolean("use_qalora", false)) f.fail("use_qalora", "is true; QALoRA adapters are not supported");
  f.refuse_if_set("modules_to_save",
                  "fully trained copies of whole modules (modules_to_save) are not supported, only LoRA matrices");
  f.refuse_if_set("layer_replication", "layer replication changes the model's layers and is not supported");
  f.refuse_if_set("target_parameters", "LoRA on parameters (target_parameters) is not supported");
  f.refuse_if_set("trainable_token_indices", "trainable token embeddings are not supported");
  f.refuse_if_set("alora_invocation_tokens", "activated LoRA (aLoRA) is not supported");

  if (f.has("init_lora_weights")) {
    const ojson& v = f.at("init_lora_weights");
    if (v.is_boolean()) {
      c.init_lora_weights = v.get<bool>();
    } else if (v.is_string()) {
      const std::string init = v.get<std::string>();
      // These initialisations change the base weights too; their adapters only
      // fit the modified base model unless converted when saving.
      if (init.rfind("pissa", 0) == 0 || init == "olora" || init == "corda" || init == "loftq" ||
          init == "lora_ga") {
        f.fail("init_lora_weights",
               "is '" + init + "': such an adapter belongs to a modified base model (PiSSA/OLoRA/CorDA/LoftQ/"
               "LoRA-GA residual), not to the original weights",
               "save it with path_initial_model_for_weight_conversion to get a plain LoRA adapter");
      }
    } else {
      f.fail("init_lora_weights", "must be true, false or a method name, found " + show(v));
    }
  }

  // target_modules
  if (!f.has("target_modules")) {
    c.targets = Targets::kDefault;
  } else if (f.at("target_modules").is_string()) {
    const std::string t = f.at("target_modules").get<std::string>();
    if (to_lower(t) == "all-linear") {
      c.targets = Targets::kAllLinear;
    } else {
      c.targets = Targets::kRegex;
      c.target_regex = t;
      compile(t, f, "target_modules");
    }
  } else {
    c.targets = Targets::kList;
    c.target_modules = f.strings("target_modules", false);
    if (c.target_modules.empty()) f.fail("target_modules", "is an empty list; the adapter targets nothing");
  }
  if (f.has("exclude_modules")) {
    if (f.at("exclude_modules").is_string()) {
      c.exclude_regex = f.at("exclude_modules").get<std::string>();
      compile(c.exclude_regex, f, "exclude_modules");
    } else {
      c.exclude_modules = f.strings("exclude_modules", false);
    }
  }

  // layers_to_transform: an int or a list of ints; layers_pattern: a string or a list.
  if (f.has("layers_to_transform")) {
    const ojson& v = f.at("layers_to_transform");
    if (v.is_number_integer()) {
      c.layers_to_transform = {v.get<std::int64_t>()};
    } else if (v.is_array()) {
      for (const auto& item : v) {
        if (!item.is_number_integer())
          f.fail("layers_to_transform", "must be an integer or a list of integers, found an element " + show(item));
        c.layers_to_transform.push_back(item.get<std::int64_t>());
      }
    } else {
      f.fail("layers_to_transform", "must be an integer or a list of integers, found " + show(v));
    }
    for (auto i : c.layers_to_transform)
      if (i < 0) f.fail("layers_to_transform", "must hold layer indices >= 0, found " + std::to_string(i));
  }
  c.layers_pattern = f.strings("layers_pattern", true);
  for (const auto& p : c.layers_pattern) compile(".*?\\." + p + "\\.(\\d+)\\.", f, "layers_pattern");
  const bool string_targets = c.targets == Targets::kRegex || c.targets == Targets::kAllLinear;
  if (string_targets && f.has("layers_to_transform")) {
    f.fail("layers_to_transform", "cannot be used when target_modules is a string (PEFT refuses it too)",
           "list the module names in target_modules instead");
  }
  if (string_targets && f.has("layers_pattern")) {
    f.fail("layers_pattern", "cannot be used when target_modules is a string (PEFT refuses it too)");
  }
  if (!c.layers_pattern.empty() && c.layers_to_transform.empty()) {
    f.fail("layers_pattern", "is set but layers_to_transform is not (PEFT requires both)");
  }

  c.rank_pattern = parse_pattern<std::int64_t>(f, "rank_pattern", true);
  c.alpha_pattern = parse_pattern<double>(f, "alpha_pattern", false);
  c.base_model_name_or_path = f.string("base_model_name_or_path", "");
  c.task_type = f.string("task_type", "");
  return c;
}

std::string LoraConfig::to_json() const {
  // Keys in sorted order, as PEFT's save_pretrained (json.dumps(sort_keys=True)).
  ojson j;
  ojson alpha = ojson::object(), rank = ojson::object();
  for (const auto& [k, v] : alpha_pattern) alpha[k] = v;
  for (const auto& [k, v] : rank_pattern) rank[k] = v;
  auto number = [](double v) {
    return std::floor(v) == v && std::abs(v) < 1e15 ? ojson(static_cast<std::int64_t>(v)) : ojson(v);
  };
  j["alpha_pattern"] = alpha;
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = base_model_name_or_path.empty() ? ojson() : ojson(base_model_name_or_path);
  j["bias"] = "none";
  if (!exclude_regex.empty()) {
    j["exclude_modules"] = exclude_regex;
  } else if (!exclude_modules.empty()) {
    j["exclude_modules"] = exclude_modules;
  } else {
    j["exclude_modules"] = nullptr;
  }
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = init_lora_weights;
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = layers_pattern.empty() ? ojson() : ojson(layers_pattern);
  j["layers_to_transform"] = layers_to_transform.empty() ? ojson() : ojson(layers_to_transform);
  j["loftq_config"] = ojson::object();
  j["lora_alpha"] = number(lora_alpha);
  j["lora_bias"] = false;
  j["lora_dropout"] = lora_dropout;
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = r;
  j["rank_pattern"] = rank;
  j["revision"] = nullptr;
  switch (targets) {
    case Targets::kList:
      j["target_modules"] = target_modules;
      break;
    case Targets::kRegex:
      j["target_modules"] = target_regex;
      break;
    case Targets::kAllLinear:
      j["target_modules"] = "all-linear";
      break;
    case Targets::kDefault:
      j["target_modules"] = nullptr;
      break;
  }
  j["task_type"] = task_type.empty() ? ojson() : ojson(task_type);
  j["use_dora"] = false;
  j["use_rslora"] = use_rslora;
  return j.dump(2) + "\n";
}

LoraConfig load_lora_config(const std::string& path) {
  std::error_code ec;
  const std::string file = std::filesystem::is_directory(path, ec)
                               ? (std::filesystem::path(path) / "adapter_config.json").string()
                               : path;
  return LoraConfig::from_json(read_text(file), file);
}

const std::vector<std::string>& lora_linear_kinds() {
  static const std::vector<std::string> kinds = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return kinds;
}

std::vector<LoraModule> resolve_lora_modules(const LoraConfig& config, const ModelConfig& model) {
  const std::int64_t E = model.hidden_size, I = model.intermediate_size;
  const std::int64_t QD = model.num_attention_heads * model.head_dim, KD = model.num_key_value_heads * model.head_dim;
  const std::map<std::string, std::pair<std::int64_t, std::int64_t>> in_out = {
      {"q_proj", {E, QD}},   {"k_proj", {E, KD}}, {"v_proj", {E, KD}},   {"o_proj", {QD, E}},
      {"gate_proj", {E, I}}, {"up_proj", {E, I}}, {"down_proj", {I, E}}};
  std::vector<std::pair<std::regex, std::int64_t>> ranks;
  std::vector<std::pair<std::regex, double>> alphas;
  for (const auto& [k, v] : config.rank_pattern) ranks.emplace_back(pattern_key_regex(k), v);
  for (const auto& [k, v] : config.alpha_pattern) alphas.emplace_back(pattern_key_regex(k), v);

  std::vector<LoraModule> out;
  for (const NamedModule& m : named_modules(model)) {
    if (!targeted(config, m)) continue;
    if (!m.linear) {
      std::string why = "is not a linear layer (PEFT refuses it too)";
      if (m.name == "lm_head") why = "is the output layer; LoRA on lm_head is not supported";
      if (m.name == "model.embed_tokens") why = "is the embedding; LoRA on embeddings is not supported";
      throw UsageError(config.source + ": target_modules matches module '" + m.name + "', which " + why,
                       "target q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj");
    }
    LoraModule l;
    l.name = m.name;
    l.layer = m.layer;
    l.kind = m.kind;
    l.in_features = in_out.at(m.kind).first;
    l.out_features = in_out.at(m.kind).second;
    l.r = config.r;
    l.alpha = config.lora_alpha;
    for (const auto& [re, v] : ranks) {
      if (std::regex_match(m.name, re)) {
        l.r = v;
        break;
      }
    }
    for (const auto& [re, v] : alphas) {
      if (std::regex_match(m.name, re)) {
        l.alpha = v;
        break;
      }
    }
    l.scaling = config.use_rslora ? l.alpha / std::sqrt(static_cast<double>(l.r)) : l.alpha / static_cast<double>(l.r);
    out.push_back(std::move(l));
  }
  if (out.empty()) {
    throw UsageError(config.source + ": target_modules (with exclude_modules / layers_to_transform) matches no "
                     "linear layer of this " + std::string(family_name(model.family)) + " model",
                     "module names look like model.layers.0.self_attn.q_proj and model.layers.0.mlp.down_proj");
  }
  return out;
}

std::string lora_tensor_name(const std::string& module, char which) {
  return "base_model.model." + module + ".lora_" + std::string(1, which) + ".weight";
}

AdapterTensors match_adapter_tensors(const std::vector<LoraModule>& modules,
                                     const std::map<std::string, std::vector<std::int64_t>>& found) {
  AdapterTensors result;
  // Canonical names: "...lora_A.default.weight" (an in-memory state_dict) -> "...lora_A.weight".
  static const std::regex in_memory(R"((.*\.lora_[AB])\.default\.weight)");
  std::map<std::string, std::vector<std::int64_t>> canonical;
  for (const auto& [name, shape] : found) {
    std::smatch m;
    const std::string c = std::regex_match(name, m, in_memory) ? m[1].str() + ".weight" : name;
    const auto [it, fresh] = result.stored.emplace(c, name);
    if (!fresh) {
      result.problems.push_back("ambiguous " + c + ": the file holds both '" + it->second + "' and '" + name + "'");
      continue;
    }
    canonical[c] = shape;
  }
  std::set<std::string> expected;
  for (const auto& m : modules) {
    const std::string why = " (r=" + std::to_string(m.r) + " for " + m.name + ")";
    const std::pair<char, std::vector<std::int64_t>> tensors[] = {{'A', {m.r, m.in_features}},
                                                                  {'B', {m.out_features, m.r}}};
    for (const auto& [which, shape] : tensors) {
      const std::string name = lora_tensor_name(m.name, which);
      expected.insert(name);
      const auto it = canonical.find(name);
      if (it == canonical.end()) {
        result.problems.push_back("missing " + name + " " + shape_text(shape));
      } else if (it->second != shape) {
        result.problems.push_back("wrong shape " + name + ": " + shape_text(it->second) + ", expected " +
                                  shape_text(shape) + why);
      }
    }
  }
  for (const auto& [name, shape] : canonical) {
    if (expected.count(name)) continue;
    std::string note;
    if (name.rfind("base_model.model.layers.", 0) == 0) {
      note = " (a key of an adapter made on a bare LlamaModel; sensecf expects a causal-LM adapter, "
             "base_model.model.model.layers...)";
    } else if (std::regex_match(name, std::regex(R"(.*\.lora_[AB]\.[^.]+\.weight)"))) {
      note = " (an adapter name other than 'default' inside the key)";
    } else if (name.find(".lora_") != std::string::npos) {
      note = " (a module adapter_config.json does not target)";
    }
    result.problems.push_back("unexpected " + name + " " + shape_text(shape) + note);
  }
  return result;
}

std::string describe_lora(const std::vector<LoraModule>& modules) {
  if (modules.empty()) return "no LoRA adapter";
  std::int64_t r_min = modules[0].r, r_max = modules[0].r;
  double a_min = modules[0].alpha, a_max = modules[0].alpha;
  std::set<std::string> kinds;
  for (const auto& m : modules) {
    r_min = std::min(r_min, m.r);
    r_max = std::max(r_max, m.r);
    a_min = std::min(a_min, m.alpha);
    a_max = std::max(a_max, m.alpha);
    kinds.insert(m.kind);
  }
  std::vector<std::string> names;
  for (const auto& k : lora_linear_kinds())
    if (kinds.count(k)) names.push_back(k);
  const std::string r = r_min == r_max ? std::to_string(r_min) : std::to_string(r_min) + ".." + std::to_string(r_max);
  const std::string a = a_min == a_max ? number_text(a_min) : number_text(a_min) + ".." + number_text(a_max);
  return "LoRA r=" + r + " alpha=" + a + " on " + std::to_string(modules.size()) + " modules (" + join(names, ", ") +
         ")";
}

}  // namespace sensecf::llm
