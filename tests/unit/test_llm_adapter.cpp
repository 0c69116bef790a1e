// PEFT LoRA adapters: adapter_config.json parsing and every refusal (each
// message names the file and the field), PEFT's target matching (lists,
// suffixes, full names, regex full match, all-linear, exclude_modules,
// layers_to_transform / layers_pattern), rank/alpha patterns and rslora
// scaling, the adapter tensors' names and shapes (GQA k/v widths, missing,
// extra, ambiguous), and the model with an adapter: a zero-B adapter changes
// nothing, merged == unmerged, the KV cache and left-padded batches still agree,
// adapter_model.bin (torch.save) reads like adapter_model.safetensors.
// (Logits vs an independent NumPy LoRA: tests/python/test_llm_reference.py.)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sensecf/core/error.h"
#include "sensecf/llm/lora/adapter.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/model/tiny.h"
#include "sensecf/llm/io/torch_bin.h"
#include "sensecf/llm/io/weights.h"
#include "test_util.h"

namespace sensecf::llm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kSource = "dir/adapter_config.json";

// adapter_config.json as PEFT >= 0.10 writes it (llm.md 3.2), with `patch` applied
// (a null in the patch removes the key).
LoraConfig config_with(const json& patch) {
  json j = {{"alpha_pattern", json::object()},
            {"auto_mapping", nullptr},
            {"base_model_name_or_path", "meta-llama/Llama-3.1-8B-Instruct"},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"inference_mode", true},
            {"init_lora_weights", true},
            {"layer_replication", nullptr},
            {"layers_pattern", nullptr},
            {"layers_to_transform", nullptr},
            {"loftq_config", json::object()},
            {"lora_alpha", 16},
            {"lora_bias", false},
            {"lora_dropout", 0.05},
            {"megatron_config", nullptr},
            {"megatron_core", "megatron.core"},
            {"modules_to_save", nullptr},
            {"peft_type", "LORA"},
            {"r", 8},
            {"rank_pattern", json::object()},
            {"revision", nullptr},
            {"target_modules", {"q_proj", "v_proj"}},
            {"task_type", "CAUSAL_LM"},
            {"use_dora", false},
            {"use_rslora", false}};
  j.merge_patch(patch);
  return LoraConfig::from_json(j.dump(), kSource);
}

ModelConfig tiny_llama() { return ModelConfig::tiny(Family::kLlama, 300); }

std::vector<std::string> names(const std::vector<LoraModule>& modules) {
  std::vector<std::string> out;
  for (const auto& m : modules) out.push_back(m.name);
  return out;
}

// ---------------------------------------------------------------- config

TEST(LoraConfigParse, ReadsWhatPeftWrites) {
  const auto c = config_with({{"extra_field_of_a_newer_peft", {1, 2}}});  // unknown fields are ignored
  EXPECT_EQ(c.r, 8);
  EXPECT_EQ(c.lora_alpha, 16);
  EXPECT_FALSE(c.use_rslora);
  EXPECT_EQ(c.targets, LoraConfig::Targets::kList);
  EXPECT_EQ(c.target_modules, std::vector<std::string>({"q_proj", "v_proj"}));
  EXPECT_EQ(c.base_model_name_or_path, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_DOUBLE_EQ(c.lora_dropout, 0.05);
  EXPECT_EQ(c.source, kSource);
}

TEST(LoraConfigParse, MinimalOldFileTakesPeftDefaults) {
  const auto c = LoraConfig::from_json(R"({"peft_type": "LORA", "target_modules": ["q_proj"]})", kSource);
  EXPECT_EQ(c.r, 8);
  EXPECT_EQ(c.lora_alpha, 8);
  const auto d = LoraConfig::from_json(R"({"peft_type": "LORA", "target_modules": null})", kSource);
  EXPECT_EQ(d.targets, LoraConfig::Targets::kDefault);
  EXPECT_EQ(names(resolve_lora_modules(d, tiny_llama())),
            std::vector<std::string>({"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
}

TEST(LoraConfigParse, RefusesWhatItCannotHonourNamingFileAndField) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"peft_type", "IA3"}}, "dir/adapter_config.json: peft_type is 'IA3'; sensecf applies LoRA adapters only"},
      {{{"peft_type", "ADALORA"}}, "peft_type is 'ADALORA'"},
      {{{"peft_type", nullptr}}, "adapter_config.json: peft_type is missing"},
      {{{"fan_in_fan_out", true}}, "adapter_config.json: fan_in_fan_out is true, which is for layers that store"},
      {{{"bias", "all"}}, "adapter_config.json: bias is 'all'; only \"none\""},
      {{{"bias", "lora_only"}}, "bias is 'lora_only'"},
      {{{"use_dora", true}}, "adapter_config.json: use_dora is true; DoRA"},
      {{{"lora_bias", true}}, "adapter_config.json: lora_bias is true"},
      {{{"modules_to_save", {"lm_head"}}}, "adapter_config.json: modules_to_save is a list of 1; fully trained"},
      {{{"layer_replication", {{0, 2}}}}, "layer_replication is a list of 1"},
      {{{"target_parameters", {"mlp.experts.down_proj"}}}, "target_parameters is a list of 1"},
      {{{"init_lora_weights", "pissa"}}, "init_lora_weights is 'pissa'"},
      {{{"init_lora_weights", 3}}, "init_lora_weights must be true, false or a method name"},
      {{{"r", 0}}, "adapter_config.json: r must be positive, found 0"},
      {{{"r", "8"}}, "adapter_config.json: r must be an integer, found \"8\""},
      {{{"lora_alpha", "16"}}, "lora_alpha must be a number"},
      {{{"use_rslora", 1}}, "use_rslora must be true or false"},
      {{{"target_modules", json::array()}}, "target_modules is an empty list"},
      {{{"target_modules", {"q_proj", 3}}}, "target_modules must be a list of strings, found an element 3"},
      {{{"target_modules", "(q_proj"}}, "adapter_config.json: target_modules '(q_proj' is not a regular expression"},
      {{{"target_modules", ".*q_proj"}, {"layers_to_transform", {0}}},
       "layers_to_transform cannot be used when target_modules is a string"},
      {{{"target_modules", "all-linear"}, {"layers_to_transform", 1}},
       "layers_to_transform cannot be used when target_modules is a string"},
      {{{"layers_pattern", "layers"}}, "layers_pattern is set but layers_to_transform is not"},
      {{{"layers_to_transform", "0"}}, "layers_to_transform must be an integer or a list of integers"},
      {{{"layers_to_transform", {-1}}}, "layers_to_transform must hold layer indices >= 0"},
      {{{"rank_pattern", {{"q_proj", 0}}}}, "adapter_config.json: rank_pattern[\"q_proj\"] must be positive"},
      {{{"rank_pattern", {{"q_proj", 4.5}}}}, "rank_pattern[\"q_proj\"] must be an integer"},
      {{{"rank_pattern", {"q_proj"}}}, "rank_pattern must be an object"},
      {{{"alpha_pattern", {{"[", 4}}}}, "alpha_pattern[\"[\"] is not a regular expression"},
      {{{"exclude_modules", "("}}, "exclude_modules '(' is not a regular expression"},
  };
  for (const auto& [patch, message] : cases) {
    SCOPED_TRACE(patch.dump());
    EXPECT_THROW_WITH(config_with(patch), UsageError, message);
  }
  EXPECT_THROW_WITH(LoraConfig::from_json("{\"peft_type\": ", kSource), UsageError,
                    "dir/adapter_config.json: not valid JSON");
  EXPECT_THROW_WITH(LoraConfig::from_json("[1]", kSource), UsageError, "dir/adapter_config.json: not a JSON object");
}

TEST(LoraConfigParse, ToJsonIsPeftsLayoutAndReadsBack) {
  auto c = config_with({{"use_rslora", true},
                        {"layers_to_transform", {1, 0}},
                        {"layers_pattern", "layers"},
                        {"exclude_modules", {"model.layers.0.self_attn.v_proj"}}});
  c.rank_pattern = {{"v_proj", 4}, {"q_proj", 16}};  // not in sorted order: file order matters
  c.alpha_pattern = {{"layers\\.1\\..*", 32.5}};
  const std::string text = c.to_json();
  const auto back = LoraConfig::from_json(text, kSource);
  EXPECT_EQ(back.r, c.r);
  EXPECT_EQ(back.lora_alpha, c.lora_alpha);
  EXPECT_EQ(back.use_rslora, true);
  EXPECT_EQ(back.target_modules, c.target_modules);
  EXPECT_EQ(back.exclude_modules, c.exclude_modules);
  EXPECT_EQ(back.layers_to_transform, std::vector<std::int64_t>({1, 0}));
  EXPECT_EQ(back.layers_pattern, std::vector<std::string>({"layers"}));
  EXPECT_EQ(back.rank_pattern, c.rank_pattern);
  EXPECT_EQ(back.alpha_pattern, c.alpha_pattern);
  EXPECT_EQ(back.base_model_name_or_path, c.base_model_name_or_path);
  // PEFT's keys, sorted as json.dumps(sort_keys=True) writes them; integral alpha as an int.
  const auto j = nlohmann::ordered_json::parse(text);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  for (const char* k : {"peft_type", "r", "lora_alpha", "target_modules", "bias", "fan_in_fan_out", "use_dora",
                        "use_rslora", "modules_to_save", "task_type", "base_model_name_or_path", "inference_mode"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_TRUE(j["lora_alpha"].is_number_integer());
  EXPECT_EQ(j["rank_pattern"].begin().key(), "v_proj");
}

// ---------------------------------------------------------------- targets

TEST(LoraTargets, ListMatchesNamesAndDottedSuffixesWithGqaShapes) {
  const auto modules = resolve_lora_modules(config_with({{"target_modules", {"k_proj", "mlp.down_proj"}}}), tiny_llama());
  ASSERT_EQ(names(modules), std::vector<std::string>({"model.layers.0.self_attn.k_proj", "model.layers.0.mlp.down_proj",
                                                      "model.layers.1.self_attn.k_proj", "model.layers.1.mlp.down_proj"}));
  // tiny: hidden 64, 2 kv heads x head_dim 16 = 32, intermediate 128
  EXPECT_EQ(modules[0].in_features, 64);
  EXPECT_EQ(modules[0].out_features, 32);
  EXPECT_EQ(modules[1].in_features, 128);
  EXPECT_EQ(modules[1].out_features, 64);
  EXPECT_EQ(modules[3].layer, 1);
  EXPECT_EQ(modules[3].kind, "down_proj");
  EXPECT_DOUBLE_EQ(modules[0].scaling, 16.0 / 8.0);
  // a full module name targets just that module; "proj" is not a dotted suffix of anything
  EXPECT_EQ(names(resolve_lora_modules(config_with({{"target_modules", {"model.layers.1.mlp.up_proj"}}}), tiny_llama())),
            std::vector<std::string>({"model.layers.1.mlp.up_proj"}));
  EXPECT_THROW_WITH(resolve_lora_modules(config_with({{"target_modules", {"proj"}}}), tiny_llama()), UsageError,
                    "dir/adapter_config.json: target_modules (with exclude_modules / layers_to_transform) matches no "
                    "linear layer");
}

TEST(LoraTargets, RegexIsAFullMatchAgainstTheModuleName) {
  EXPECT_EQ(names(resolve_lora_modules(config_with({{"target_modules", R"(.*\.1\..*(o|gate)_proj)"}}), tiny_llama())),
            std::vector<std::string>({"model.layers.1.self_attn.o_proj", "model.layers.1.mlp.gate_proj"}));
  // "q_proj" alone is no full match of "model.layers.0.self_attn.q_proj"
  EXPECT_THROW_WITH(resolve_lora_modules(config_with({{"target_modules", "q_proj"}}), tiny_llama()), UsageError,
                    "matches no linear layer");
}

TEST(LoraTargets, AllLinearIsEveryProjectionButNotLmHead) {
  const auto modules = resolve_lora_modules(config_with({{"target_modules", "ALL-LINEAR"}}), tiny_llama());
  ASSERT_EQ(modules.size(), 14u);
  for (const auto& m : modules) EXPECT_NE(m.name, "lm_head");
  EXPECT_EQ(modules[6].name, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(describe_lora(modules), "LoRA r=8 alpha=16 on 14 modules (q_proj, k_proj, v_proj, o_proj, gate_proj, "
                                    "up_proj, down_proj)");
}

TEST(LoraTargets, ModulesThatCannotTakeAnAdapterAreRefusedByName) {
  EXPECT_THROW_WITH(resolve_lora_modules(config_with({{"target_modules", {"q_proj", "lm_head"}}}), tiny_llama()),
                    UsageError, "target_modules matches module 'lm_head', which is the output layer");
  EXPECT_THROW_WITH(resolve_lora_modules(config_with({{"target_modules", {"embed_tokens"}}}), tiny_llama()),
                    UsageError, "module 'model.embed_tokens', which is the embedding");
  EXPECT_THROW_WITH(resolve_lora_modules(config_with({{"target_modules", ".*"}}), tiny_llama()), UsageError,
                    "module 'model', which is not a linear layer");
  EXPECT_THROW_WITH(resolve_lora_modules(config_with({{"target_modules", {"mlp"}}}), tiny_llama()), UsageError,
                    "module 'model.layers.0.mlp', which is not a linear layer");
}

TEST(LoraTargets, LayersToTransformAndLayersPattern) {
  EXPECT_EQ(names(resolve_lora_modules(config_with({{"layers_to_transform", 1}}), tiny_llama())),
            std::vector<std::string>({"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
  EXPECT_EQ(names(resolve_lora_modules(config_with({{"layers_to_transform", {0}}, {"layers_pattern", {"layers"}}}),
                                       tiny_llama())),
            std::vector<std::string>({"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"}));
  // a pattern that names no layer container matches nothing (as in PEFT)
  EXPECT_THROW_WITH(
      resolve_lora_modules(config_with({{"layers_to_transform", {0}}, {"layers_pattern", "h"}}), tiny_llama()),
      UsageError, "matches no linear layer");
}

TEST(LoraTargets, ExcludeModulesAsListOrRegex) {
  EXPECT_EQ(names(resolve_lora_modules(config_with({{"exclude_modules", {"model.layers.0.self_attn.q_proj", "v_proj"}}}),
                                       tiny_llama())),
            std::vector<std::string>({"model.layers.1.self_attn.q_proj"}));
  EXPECT_EQ(names(resolve_lora_modules(config_with({{"exclude_modules", R"(.*\.1\..*)"}}), tiny_llama())),
            std::vector<std::string>({"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"}));
}

TEST(LoraTargets, RankAndAlphaPatternsAndRsloraScaling) {
  // keys match at the end of the module name (after a dot); the first key in file order wins
  const auto c = LoraConfig::from_json(R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": true,
      "target_modules": ["q_proj", "v_proj"],
      "rank_pattern": {"layers.0.self_attn.q_proj": 4, "q_proj": 2, "elf_attn.v_proj": 99},
      "alpha_pattern": {"layers\\.1\\..*": 32}})",
                                       kSource);
  const auto modules = resolve_lora_modules(c, tiny_llama());
  ASSERT_EQ(modules.size(), 4u);
  EXPECT_EQ(modules[0].r, 4);  // layer 0 q_proj: first key
  EXPECT_EQ(modules[1].r, 8);  // "elf_attn.v_proj" is no dotted suffix
  EXPECT_EQ(modules[2].r, 2);  // layer 1 q_proj
  EXPECT_EQ(modules[3].r, 8);
  EXPECT_DOUBLE_EQ(modules[0].alpha, 16);
  EXPECT_DOUBLE_EQ(modules[2].alpha, 32);
  EXPECT_DOUBLE_EQ(modules[0].scaling, 16 / std::sqrt(4.0));
  EXPECT_DOUBLE_EQ(modules[2].scaling, 32 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(modules[3].scaling, 32 / std::sqrt(8.0));
  EXPECT_EQ(describe_lora(modules), "LoRA r=2..8 alpha=16..32 on 4 modules (q_proj, v_proj)");
}

// ---------------------------------------------------------------- tensor names

std::map<std::string, std::vector<std::int64_t>> good_tensors(const std::vector<LoraModule>& modules) {
  std::map<std::string, std::vector<std::int64_t>> t;
  for (const auto& m : modules) {
    t[lora_tensor_name(m.name, 'A')] = {m.r, m.in_features};
    t[lora_tensor_name(m.name, 'B')] = {m.out_features, m.r};
  }
  return t;
}

TEST(LoraTensors, NamesAndShapesAreChecked) {
  const auto modules = resolve_lora_modules(config_with({{"target_modules", {"k_proj"}}}), tiny_llama());
  EXPECT_EQ(lora_tensor_name(modules[0].name, 'A'), "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight");
  auto t = good_tensors(modules);
  EXPECT_TRUE(match_adapter_tensors(modules, t).problems.empty());

  t.erase("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight");
  t["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"] = {64, 8};  // q width, not GQA's 32
  t["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = {8, 64};
  t["base_model.model.layers.0.self_attn.k_proj.lora_A.weight"] = {8, 64};
  const auto problems = match_adapter_tensors(modules, t).problems;
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0],
            "wrong shape base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight: [64, 8], expected [32, 8] "
            "(r=8 for model.layers.0.self_attn.k_proj)");
  EXPECT_EQ(problems[1], "missing base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight [32, 8]");
  EXPECT_NE(problems[2].find("unexpected base_model.model.layers.0.self_attn.k_proj.lora_A.weight [8, 64] (a key of "
                             "an adapter made on a bare LlamaModel"),
            std::string::npos)
      << problems[2];
  EXPECT_EQ(problems[3], "unexpected base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight [8, 64] (a "
                         "module adapter_config.json does not target)");
}

TEST(LoraTensors, InMemoryDefaultNamesAreAcceptedUnlessAmbiguous) {
  const auto modules = resolve_lora_modules(config_with({{"layers_to_transform", 0}}), tiny_llama());
  std::map<std::string, std::vector<std::int64_t>> t;
  for (const auto& [name, shape] : good_tensors(modules)) {
    t[name.substr(0, name.size() - 7) + ".default.weight"] = shape;  // "...lora_A.default.weight"
  }
  const auto ok = match_adapter_tensors(modules, t);
  EXPECT_TRUE(ok.problems.empty());
  EXPECT_EQ(ok.stored.at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight");
  t["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = {8, 64};
  t["base_model.model.model.layers.0.self_attn.v_proj.lora_B.other.weight"] = {32, 8};
  const auto bad = match_adapter_tensors(modules, t).problems;
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_NE(bad[0].find("ambiguous base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight: the file holds "
                        "both"),
            std::string::npos)
      << bad[0];
  EXPECT_NE(bad[1].find("an adapter name other than 'default'"), std::string::npos) << bad[1];
}

// ---------------------------------------------------------------- torch side

TEST(LoraLinearLayer, ForwardAndMergeAreTheLoraFormula) {
  torch::manual_seed(5);
  LoraLinear l;
  l.weight = torch::randn({6, 5});
  const auto x = torch::randn({3, 4, 5});
  EXPECT_TRUE(torch::equal(l.forward(x), torch::matmul(x, l.weight.t())));
  l.lora_A = torch::randn({2, 5});
  l.lora_B = torch::randn({6, 2});
  l.scaling = 0.75;
  const auto want = torch::matmul(x, l.weight.t()) + 0.75 * torch::matmul(torch::matmul(x, l.lora_A.t()), l.lora_B.t());
  EXPECT_TRUE(torch::allclose(l.forward(x), want, 1e-6, 1e-6));
  LoraLinear merged = l;
  merged.merge();
  EXPECT_FALSE(merged.has_adapter());
  EXPECT_TRUE(torch::allclose(merged.weight, l.weight + 0.75 * torch::matmul(l.lora_B, l.lora_A), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(merged.forward(x), want, 1e-5, 1e-5));
  // a bf16 layer: the LoRA branch runs in fp32 and the sum is cast back once (PEFT)
  LoraLinear half = l;
  half.weight = l.weight.to(torch::kBFloat16);
  const auto xb = x.to(torch::kBFloat16);
  const auto y = half.forward(xb);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  const auto base = torch::matmul(xb, half.weight.t());
  const auto branch = torch::matmul(torch::matmul(xb.to(torch::kFloat32), l.lora_A.t()), l.lora_B.t()) * 0.75;
  EXPECT_TRUE(torch::equal(y, (base + branch).to(torch::kBFloat16)));
}

class AdapterModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    write_tiny_checkpoint(dir_->file("llama"), "llama", 11);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string model_dir() { return dir_->file("llama"); }
  static ModelConfig model_config() { return load_config(model_dir()); }

  // Writes an adapter for the tiny model into dir_/name and returns the directory.
  static std::string write_adapter(const std::string& name, const json& patch, LoraInit init, std::uint64_t seed = 7) {
    auto adapter = init_lora_adapter(config_with(patch), model_config(), init, seed);
    save_lora_adapter(dir_->file(name), adapter);
    return dir_->file(name);
  }
  static std::unique_ptr<CausalLM> load(const std::string& adapter, bool merge = false,
                                        const std::string& dtype = "float32") {
    ModelOptions o;
    o.dtype = dtype;
    o.adapter = adapter;
    o.merge_adapter = merge;
    return CausalLM::load(model_dir(), o);
  }
  static std::vector<int> ids(int n, int salt) {
    std::vector<int> out;
    for (int i = 0; i < n; ++i) out.push_back((i * 37 + salt * 11 + 5) % 300);
    return out;
  }
  static double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double d = 0;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(double(a[i]) - b[i]));
    return d;
  }
  static test::TempDir* dir_;
};
test::TempDir* AdapterModel::dir_ = nullptr;

TEST_F(AdapterModel, ZeroBAdapterLeavesLogitsBitIdentical) {
  const auto dir = write_adapter("zero", {{"target_modules", "all-linear"}}, LoraInit::kZero);
  for (const char* dtype : {"float32", "bfloat16"}) {
    SCOPED_TRACE(dtype);
    const auto base = load("", false, dtype);
    const auto with = load(dir, false, dtype);
    EXPECT_EQ(with->adapter_modules().size(), 14u);
    EXPECT_FALSE(with->adapter_merged());
    EXPECT_TRUE(base->adapter_modules().empty());
    EXPECT_EQ(base->logits(ids(20, 1)), with->logits(ids(20, 1)));
  }
}

TEST_F(AdapterModel, RandomAdapterChangesLogitsAndMergedAgreesWithUnmerged) {
  const auto dir = write_adapter("random", {{"target_modules", "all-linear"}, {"use_rslora", true},
                                            {"rank_pattern", {{"v_proj", 4}}}, {"alpha_pattern", {{"down_proj", 8}}}},
                                 LoraInit::kRandom);
  const auto x = ids(24, 2);
  const auto base = load("")->logits(x);
  const auto unmerged_model = load(dir);
  const auto unmerged = unmerged_model->logits(x);
  const auto merged_model = load(dir, true);
  const auto merged = merged_model->logits(x);
  EXPECT_TRUE(merged_model->adapter_merged());
  EXPECT_EQ(describe_lora(merged_model->adapter_modules()),
            "LoRA r=4..8 alpha=8..16 on 14 modules (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
  EXPECT_GT(max_diff(base, unmerged), 1e-2);
  EXPECT_LT(max_diff(merged, unmerged), 1e-5);
}

TEST_F(AdapterModel, KvCacheAndBatchedGenerationStillAgree) {
  const auto dir = write_adapter("gen", {{"target_modules", {"q_proj", "k_proj", "v_proj", "o_proj"}}},
                                 LoraInit::kRandom, 3);
  for (bool merge : {false, true}) {
    SCOPED_TRACE(merge ? "merged" : "unmerged");
    const auto model = load(dir, merge);
    const auto x = ids(30, 3);
    EXPECT_LT(max_diff(model->logits(x), model->logits_incremental(x)), 1e-4);
    const std::vector<std::vector<int>> prompts = {ids(3, 4), ids(9, 5), ids(6, 6)};
    GenerationOptions o;
    o.max_new_tokens = 10;
    const auto batch = generate(*model, prompts, o, 0);
    for (std::size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(batch[i], generate(*model, {prompts[i]}, o, 0)[0]);
  }
  // and the adapter does change what is generated
  GenerationOptions o;
  o.max_new_tokens = 10;
  EXPECT_NE(generate(*load(dir), {ids(5, 7)}, o, 0), generate(*load(""), {ids(5, 7)}, o, 0));
}

TEST_F(AdapterModel, InitIsDeterministicAndSavedTensorsReadBack) {
  const json patch = {{"target_modules", {"up_proj"}}};
  const auto a = init_lora_adapter(config_with(patch), model_config(), LoraInit::kRandom, 9);
  const auto b = init_lora_adapter(config_with(patch), model_config(), LoraInit::kRandom, 9);
  const auto c = init_lora_adapter(config_with(patch), model_config(), LoraInit::kRandom, 10);
  const auto& [A, B] = a.weights.at("model.layers.0.mlp.up_proj");
  EXPECT_TRUE(torch::equal(A, b.weights.at("model.layers.0.mlp.up_proj").first));
  EXPECT_FALSE(torch::equal(A, c.weights.at("model.layers.0.mlp.up_proj").first));
  EXPECT_EQ(A.sizes().vec(), std::vector<std::int64_t>({8, 64}));
  EXPECT_EQ(B.sizes().vec(), std::vector<std::int64_t>({128, 8}));
  EXPECT_LE(A.abs().max().item<double>(), 1 / std::sqrt(64.0));  // kaiming_uniform(a=sqrt(5)) bound
  const auto zero = init_lora_adapter(config_with(patch), model_config(), LoraInit::kZero, 9);
  EXPECT_EQ(zero.weights.at("model.layers.0.mlp.up_proj").second.abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(zero.weights.at("model.layers.0.mlp.up_proj").first, A));  // same A stream

  save_lora_adapter(dir_->file("saved"), a);
  const auto back = load_lora_adapter(dir_->file("saved"), model_config());
  EXPECT_FALSE(back.config.init_lora_weights);
  ASSERT_EQ(back.modules.size(), 2u);
  for (const auto& m : a.modules) {
    EXPECT_TRUE(torch::equal(back.weights.at(m.name).first, a.weights.at(m.name).first));
    EXPECT_TRUE(torch::equal(back.weights.at(m.name).second, a.weights.at(m.name).second));
  }
  EXPECT_THROW_WITH(parse_lora_init("gaussian"), UsageError, "unknown LoRA init 'gaussian'");
}

TEST_F(AdapterModel, TensorsThatDoNotFitTheConfigAreListed) {
  const auto dir = write_adapter("mismatch", {{"target_modules", "all-linear"}}, LoraInit::kRandom);
  // The config now claims r=4 on q_proj only: 4 wrong shapes, 24 unexpected tensors.
  std::ofstream(dir + "/adapter_config.json") << R"({"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"]})";
  EXPECT_THROW_WITH(load(dir), Error, "adapter_model.safetensors does not fit " + dir + "/adapter_config.json and the model (28 problems):");
  EXPECT_THROW_WITH(load(dir), Error, "... and 16 more");
  EXPECT_THROW_WITH(load(dir), Error,
                    "wrong shape base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight: [8, 64], expected "
                    "[4, 64] (r=4 for model.layers.0.self_attn.q_proj)");
}

TEST_F(AdapterModel, PickledAdapterModelBinIsReadLikeSafetensors) {
  const auto dir = write_adapter("pickled", json::object(), LoraInit::kRandom);
  const auto x = ids(12, 8);
  const auto want = load(dir)->logits(x);
  // PEFT's safe_serialization=False: torch.save of the same state dict.
  const WeightMap tensors = load_weights(dir + "/adapter_model.safetensors");
  std::map<std::string, TensorData> data;
  for (const auto& [name, t] : tensors) {
    data[name] = {Dtype::kF32, t.sizes().vec(), t.data_ptr(), static_cast<std::size_t>(t.numel()) * 4};
  }
  write_torch_bin(dir + "/adapter_model.bin", data);
  fs::remove(dir + "/adapter_model.safetensors");
  EXPECT_EQ(load(dir)->logits(x), want);
  std::ofstream(dir + "/adapter_model.bin") << "not a zip";
  EXPECT_THROW_WITH(load(dir), Error, dir + "/adapter_model.bin");
}

TEST_F(AdapterModel, MissingFilesAreRefusedWithHints) {
  const auto dir = write_adapter("files", json::object(), LoraInit::kRandom);
  fs::remove(dir + "/adapter_model.safetensors");
  EXPECT_THROW_WITH(load(dir), UsageError, "no adapter_model.safetensors (or adapter_model.bin) in " + dir);
  fs::remove(dir + "/adapter_config.json");
  EXPECT_THROW_WITH(load(dir), UsageError, "cannot open " + dir + "/adapter_config.json");
  ModelOptions o;
  o.merge_adapter = true;
  EXPECT_THROW_WITH(CausalLM::load(model_dir(), o), UsageError, "merge_adapter is set without an adapter");
}

TEST_F(AdapterModel, InitAdapterCommandWritesAnAdapterTheLogitsCommandApplies) {
  const std::string bin = test::sensecf_bin();
  const std::string out = dir_->file("cli");
  auto r = test::run_command(bin + " lm init-adapter --model " + model_dir() + " --out " + out +
                             " --targets q_proj,v_proj --r 4 --alpha 8 --log.level warn");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto config = load_lora_config(out);
  EXPECT_EQ(config.r, 4);
  EXPECT_EQ(config.base_model_name_or_path, model_dir());
  // .npy: written by every build (the LLM-only one has no HDF5); NumPy reads it in the golden tests.
  r = test::run_command(bin + " lm logits --model " + model_dir() + " --adapter " + out + " --ids 1,2,3 --out " +
                        dir_->file("cli.npy"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::filesystem::file_size(dir_->file("cli.npy")),
            128 + 3 * static_cast<std::uintmax_t>(model_config().vocab_size) * sizeof(float));
  EXPECT_NE(r.output.find("LoRA r=4 alpha=8 on 4 modules (q_proj, v_proj)"), std::string::npos) << r.output;
  r = test::run_command(bin + " lm init-adapter --model " + model_dir() + " --out " + out + "2 --targets lm_head");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--targets: target_modules matches module 'lm_head'"), std::string::npos) << r.output;
  r = test::run_command(bin + " lm generate --model " + model_dir() + " --prompt hi --merge-adapter");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--merge-adapter needs --adapter DIR"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sensecf::llm
