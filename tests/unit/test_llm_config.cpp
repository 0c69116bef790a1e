// config.json -> ModelConfig: the real Llama-3.1-8B-Instruct and BioMistral-7B
// configs (reference/llm.md 1.1, 1.4), legacy rope_scaling keys, refusals, the
// tiny configs' round trip, expected tensor shapes, and RoPE inverse
// frequencies against hand computations and the llm.md band counts.
#include <gtest/gtest.h>

#include <cstdint>
#include <cmath>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/config.h"
#include "test_util.h"

namespace sensecf::llm {
namespace {

const char* kLlama31 = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 128,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

const char* kBioMistral = R"({
  "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0", "use_cache": true, "vocab_size": 32000})";

// kLlama31 with `from` replaced by `to` (which must occur).
std::string llama_with(const std::string& from, const std::string& to) {
  std::string s = kLlama31;
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(LlmConfig, Llama31) {
  const auto c = ModelConfig::from_json(kLlama31);
  EXPECT_EQ(c.family, Family::kLlama);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, std::vector<std::int64_t>({128001, 128008, 128009}));
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  // 9 tensors per layer x 32 + embed, norm, lm_head = 291 (llm.md 1.6); 8,030,261,248 parameters.
  const auto shapes = expected_tensor_shapes(c);
  EXPECT_EQ(shapes.size(), 291u);
  EXPECT_EQ(shapes.at("model.layers.31.self_attn.k_proj.weight"), std::vector<std::int64_t>({1024, 4096}));
  EXPECT_EQ(shapes.at("model.layers.0.mlp.down_proj.weight"), std::vector<std::int64_t>({4096, 14336}));
  std::int64_t n_params = 0;
  for (const auto& [name, shape] : shapes) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    n_params += n;
  }
  EXPECT_EQ(n_params, 8030261248LL);
}

// The presets `lm bench --shape` uses are the published configs above, field for field.
TEST(LlmConfig, PresetsAreThePublishedConfigs) {
  EXPECT_EQ(ModelConfig::preset("llama-3.1-8b").to_json(), ModelConfig::from_json(kLlama31).to_json());
  EXPECT_EQ(ModelConfig::preset("biomistral-7b").to_json(), ModelConfig::from_json(kBioMistral).to_json());
  EXPECT_EQ(ModelConfig::preset_names(), std::vector<std::string>({"biomistral-7b", "llama-3.1-8b"}));
  try {
    ModelConfig::preset("llama-3.1-70b");
    ADD_FAILURE() << "an unknown preset was accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "unknown model preset 'llama-3.1-70b'");
    EXPECT_NE(e.hint().find("biomistral-7b, llama-3.1-8b"), std::string::npos) << e.hint();
  }
}

TEST(LlmConfig, BioMistral) {
  const auto c = ModelConfig::from_json(kBioMistral);
  EXPECT_EQ(c.family, Family::kMistral);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);  // hidden / heads: no head_dim key
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kDefault);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<std::int64_t>({2}));
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(expected_tensor_shapes(c).at("lm_head.weight"), std::vector<std::int64_t>({32000, 4096}));
  // v0.2-style null sliding window; absent means transformers' default 4096.
  std::string text = kBioMistral;
  text.replace(text.find("\"sliding_window\": 4096"), 22, "\"sliding_window\": null");
  EXPECT_EQ(ModelConfig::from_json(text).sliding_window, 0);
  text.replace(text.find("\"sliding_window\": null,"), 23, "");
  EXPECT_EQ(ModelConfig::from_json(text).sliding_window, 4096);
}

TEST(LlmConfig, RopeScalingVariants) {
  // Legacy key `type` (transformers < 4.43 exports) means the same.
  const auto legacy = ModelConfig::from_json(llama_with("\"rope_type\": \"llama3\"", "\"type\": \"llama3\""));
  EXPECT_EQ(legacy.rope_scaling.type, RopeType::kLlama3);
  EXPECT_EQ(rope_inv_freq(legacy), rope_inv_freq(ModelConfig::from_json(kLlama31)));
  const auto linear = ModelConfig::from_json(
      llama_with(R"("rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"})",
                 R"("rope_scaling": {"type": "linear", "factor": 2.0})"));
  EXPECT_EQ(linear.rope_scaling.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(linear.rope_scaling.factor, 2.0);
  EXPECT_EQ(ModelConfig::from_json(llama_with("\"rope_type\": \"llama3\"", "\"rope_type\": \"default\""))
                .rope_scaling.type,
            RopeType::kDefault);
  EXPECT_THROW_WITH(
      ModelConfig::from_json(llama_with("\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\"")), UsageError,
      "config.json: rope_scaling type 'yarn' is not supported");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("\"low_freq_factor\": 1.0,", "")), UsageError,
                    "config.json: rope_scaling: low_freq_factor is required");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("\"original_max_position_embeddings\": 8192,", "")),
                    UsageError, "original_max_position_embeddings is required");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with(", \"rope_type\": \"llama3\"", "")), UsageError,
                    "rope_scaling has neither rope_type nor type");
}

TEST(LlmConfig, Refusals) {
  EXPECT_THROW_WITH(
      ModelConfig::from_json(
          R"({"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 8})"),
      UsageError,
      "config.json: architecture 'GPTNeoXForCausalLM' (model_type 'gpt_neox') is not supported; sensecf runs "
      "Llama "
      "and Mistral checkpoints");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("LlamaForCausalLM", "LlamaForSequenceClassification")),
                    UsageError,
                    "architecture 'LlamaForSequenceClassification' (model_type 'llama') is not supported");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("LlamaForCausalLM", "MistralForCausalLM")), UsageError,
                    "architecture 'MistralForCausalLM' disagrees with model_type 'llama'");
  EXPECT_THROW_WITH(
      ModelConfig::from_json(llama_with("\"attention_bias\": false", "\"attention_bias\": true")), UsageError,
      "attention_bias is true");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("\"mlp_bias\": false", "\"mlp_bias\": true")),
                    UsageError, "mlp_bias is true");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("\"silu\"", "\"gelu\"")), UsageError,
                    "hidden_act is 'gelu'; only silu");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("\"hidden_size\": 4096,", "")), UsageError,
                    "config.json: hidden_size is required");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("\"hidden_size\": 4096", "\"hidden_size\": \"4096\"")),
                    UsageError, "hidden_size must be an integer, found \"4096\"");
  EXPECT_THROW_WITH(
      ModelConfig::from_json(llama_with("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5")),
      UsageError, "num_attention_heads (32) is not a multiple of num_key_value_heads (5)");
  EXPECT_THROW_WITH(ModelConfig::from_json(llama_with("\"head_dim\": 128", "\"head_dim\": 127")), UsageError,
                    "head_dim (127) must be even");
  EXPECT_THROW_WITH(
      ModelConfig::from_json(llama_with("\"eos_token_id\": [128001", "\"eos_token_id\": [\"x\"")), UsageError,
      "eos_token_id must be an integer or a list of integers");
  EXPECT_THROW_WITH(ModelConfig::from_json("{\"model_type\": "), UsageError, "config.json: not valid JSON");
  EXPECT_THROW_WITH(ModelConfig::from_json("[]"), UsageError, "not a JSON object");
  EXPECT_THROW_WITH(ModelConfig::from_json("{}"), UsageError, "neither model_type nor architectures");
  test::TempDir dir;
  EXPECT_THROW_WITH(load_config(dir.path().string()), UsageError, "cannot open " + dir.file("config.json"));
}

TEST(LlmConfig, TinyConfigsRoundTrip) {
  for (const auto family : {Family::kLlama, Family::kMistral}) {
    const auto c = ModelConfig::tiny(family, 300);
    test::TempDir dir;
    dir.write("config.json", c.to_json());
    const auto back = load_config(dir.path().string());
    EXPECT_EQ(back.family, family);
    EXPECT_EQ(back.vocab_size, 300);
    EXPECT_EQ(back.hidden_size, 64);
    EXPECT_EQ(back.intermediate_size, 128);
    EXPECT_EQ(back.num_hidden_layers, 2);
    EXPECT_EQ(back.num_attention_heads, 4);
    EXPECT_EQ(back.num_key_value_heads, 2);
    EXPECT_EQ(back.head_dim, 16);
    EXPECT_EQ(back.rms_norm_eps, c.rms_norm_eps);
    EXPECT_EQ(back.rope_theta, c.rope_theta);
    EXPECT_EQ(back.rope_scaling.type, c.rope_scaling.type);
    EXPECT_EQ(back.sliding_window, family == Family::kMistral ? 16 : 0);
    EXPECT_EQ(back.bos_token_id, c.bos_token_id);
    EXPECT_EQ(back.eos_token_ids, c.eos_token_ids);
    EXPECT_EQ(back.tie_word_embeddings, c.tie_word_embeddings);
    EXPECT_EQ(rope_inv_freq(back), rope_inv_freq(c));
    EXPECT_EQ(back.to_json(), c.to_json());
  }
  EXPECT_EQ(ModelConfig::tiny(Family::kLlama, 10).rope_scaling.type, RopeType::kLlama3);
  EXPECT_EQ(parse_family("mistral"), Family::kMistral);
  EXPECT_THROW_WITH(parse_family("gpt2"), UsageError, "unknown model family 'gpt2'");
}

ModelConfig rope_config(std::int64_t head_dim, double theta) {
  auto c = ModelConfig::tiny(Family::kMistral, 10);
  c.head_dim = head_dim;
  c.rope_theta = theta;
  return c;
}

TEST(LlmConfig, RopeInverseFrequenciesByHand) {
  // default: theta^(-2i/d); d = 4, theta = 10000 -> 1, 1/100.
  auto c = rope_config(4, 10000.0);
  EXPECT_EQ(rope_inv_freq(c), std::vector<float>({1.0f, 0.01f}));
  // linear: divided by the factor.
  c.rope_scaling.type = RopeType::kLinear;
  c.rope_scaling.factor = 2.0;
  EXPECT_EQ(rope_inv_freq(c), std::vector<float>({0.5f, 0.005f}));
  // llama3 with d = 6, theta = 1000: frequencies 1, 0.1, 0.01, wavelengths 2*pi/f = 6.28, 62.8, 628.
  // Old context 100, low 1, high 4, factor 8: wavelength < 25 kept, > 100 divided by 8, between smoothed.
  c = rope_config(6, 1000.0);
  c.rope_scaling = {RopeType::kLlama3, 8.0, 1.0, 4.0, 100};
  const auto f = rope_inv_freq(c);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  const double s = (100.0 / (2 * M_PI / 0.1) - 1.0) / (4.0 - 1.0);  // 0.19718...
  EXPECT_NEAR(s, 0.197184, 1e-6);
  EXPECT_FLOAT_EQ(f[1], static_cast<float>((1 - s) * 0.1 / 8 + s * 0.1));
  EXPECT_NEAR(f[1], 0.0297535, 1e-7);  // 0.1 * (0.802817 / 8 + 0.197183)
  EXPECT_FLOAT_EQ(f[2], 0.00125f);
}

TEST(LlmConfig, Llama31RopeBands) {
  // llm.md 1.2: head_dim 128, theta 5e5, llama3 (8, 1, 4, 8192): of 64 frequencies
  // 29 are unchanged, 29 divided by 8 and indices 29..34 smoothed.
  const auto c = ModelConfig::from_json(kLlama31);
  auto plain = c;
  plain.rope_scaling = {};
  const auto scaled = rope_inv_freq(c), base = rope_inv_freq(plain);
  ASSERT_EQ(scaled.size(), 64u);
  int unchanged = 0, divided = 0;
  std::vector<int> smoothed;
  for (int i = 0; i < 64; ++i) {
    if (scaled[i] == base[i]) {
      ++unchanged;
    } else if (std::abs(scaled[i] * 8.0 / base[i] - 1.0) < 1e-6) {
      ++divided;
    } else {
      smoothed.push_back(i);
      EXPECT_LT(scaled[i], base[i]);
      EXPECT_GT(scaled[i], base[i] / 8);
    }
  }
  EXPECT_EQ(unchanged, 29);
  EXPECT_EQ(divided, 29);
  EXPECT_EQ(smoothed, std::vector<int>({29, 30, 31, 32, 33, 34}));
  EXPECT_EQ(base[0], 1.0f);
  EXPECT_FLOAT_EQ(base[1], static_cast<float>(std::pow(500000.0, -2.0 / 128)));
}

}  // namespace
}  // namespace sensecf::llm
