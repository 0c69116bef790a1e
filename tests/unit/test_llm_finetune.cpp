// LoRA fine-tuning (llm/train) on the tiny random Llama: exact resume after an
// interruption, refusal of a checkpoint written with other settings, JSONL
// errors that name file:line, chat examples that learn the answer only, LoRA
// dropout, divergence, the schedules and one AdamW step in closed form. The
// comparison with PyTorch's optimiser on an independent model is
// tests/python/test_finetune_golden.py.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "llm_util.h"
#include "sensecf/core/error.h"
#include "sensecf/llm/io/config.h"
#include "sensecf/llm/io/weights.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/decoder.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llm/train/data.h"
#include "sensecf/llm/train/optim.h"
#include "sensecf/llm/train/trainer.h"

namespace sensecf::llm {
namespace {

std::string examples_jsonl(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += "{\"prompt\": \"steps " + std::to_string(1000 + 317 * i) + ", glucose " + std::to_string(90 + 7 * i) +
            ". change:\", \"completion\": \" steps " + std::to_string(5000 + 100 * i) + "\"}\n";
  }
  text += "{\"messages\": [{\"role\": \"user\", \"content\": \"REM 10%\"}, {\"role\": \"assistant\", \"content\": "
          "\"REM 20%\"}]}\n";
  return text;
}

FinetuneOptions small_run(const test::TempDir& dir, const std::string& out) {
  FinetuneOptions o;
  o.model_dir = test::tiny_checkpoint("llama");
  o.data_path = dir.write("train.jsonl", examples_jsonl(11));
  o.out_dir = dir.file(out);
  o.r = 4;
  o.alpha = 8;
  o.dropout = 0.1;  // exercises the generator state in the checkpoint
  o.batch_size = 2;
  o.grad_accum = 2;
  o.max_steps = 6;
  o.lr = 5e-3;
  o.schedule = "cosine";
  o.warmup_ratio = 0.2;
  o.eval_fraction = 0.25;
  o.eval_every = 2;
  o.save_every = 0;
  o.log_every = 0;
  return o;
}

void expect_same_adapter(const std::string& a, const std::string& b) {
  const auto wa = load_weights(a + "/adapter_model.safetensors"), wb = load_weights(b + "/adapter_model.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) {
    ASSERT_TRUE(wb.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, wb.at(name))) << name << " differs after resume";
  }
}

TEST(LlmFinetune, ResumedRunEqualsTheUninterruptedOneToTheLastBit) {
  torch::set_num_threads(1);
  test::TempDir dir;
  const auto whole = finetune(small_run(dir, "whole"));
  ASSERT_EQ(whole.steps, 6);
  EXPECT_FALSE(whole.interrupted);
  ASSERT_EQ(whole.curve.size(), 6u);

  int polls = 0;
  const auto first = finetune(small_run(dir, "split"), [&] { return ++polls == 3; });
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.steps, 3);
  const auto second = finetune(small_run(dir, "split"));
  EXPECT_EQ(second.resumed_from, 3);
  EXPECT_EQ(second.steps, 6);
  ASSERT_EQ(second.curve.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(second.curve[i].loss, whole.curve[i].loss) << "step " << i + 1;
    EXPECT_EQ(second.curve[i].lr, whole.curve[i].lr) << "step " << i + 1;
    EXPECT_EQ(second.curve[i].grad_norm, whole.curve[i].grad_norm) << "step " << i + 1;
    EXPECT_EQ(second.curve[i].tokens, whole.curve[i].tokens) << "step " << i + 1;
    EXPECT_EQ(std::isnan(second.curve[i].eval_loss), std::isnan(whole.curve[i].eval_loss)) << "step " << i + 1;
    if (!std::isnan(whole.curve[i].eval_loss)) {
      EXPECT_EQ(second.curve[i].eval_loss, whole.curve[i].eval_loss);
    }
  }
  expect_same_adapter(dir.file("whole"), dir.file("split"));
  // Not trivially equal: training moved the adapter and the loss.
  EXPECT_NE(whole.curve.front().loss, whole.curve.back().loss);
  EXPECT_TRUE(std::isfinite(whole.curve[1].eval_loss));  // eval every 2 steps
  EXPECT_TRUE(std::isnan(whole.curve[0].eval_loss));
  EXPECT_EQ(whole.curve[0].lr, 0.0);  // warmup: ceil(0.2 * 6) = 2 steps, the first at factor 0
  std::ifstream curve(dir.file("whole/train_curve.csv"));
  std::string header;
  std::getline(curve, header);
  EXPECT_EQ(header, "step,epoch,loss,eval_loss,lr,grad_norm,tokens,seconds");
}

TEST(LlmFinetune, ACheckpointOfOtherSettingsIsRefusedNamingThem) {
  test::TempDir dir;
  int polls = 0;
  ASSERT_TRUE(finetune(small_run(dir, "run"), [&] { return ++polls == 1; }).interrupted);
  auto changed = small_run(dir, "run");
  changed.lr = 1e-3;
  changed.r = 8;
  EXPECT_THROW_WITH(finetune(changed), UsageError, "other settings (lr, r differ)");
  changed.resume = false;  // starting over is allowed when asked for
  EXPECT_EQ(finetune(changed).resumed_from, 0);
}

// A given starting adapter: the fresh adapter the trainer would make, written
// out and passed back, trains the same curve to the last bit; another one (a
// rank pattern, random B) is trained in its own shape and saved in it; a
// checkpoint of a run from one adapter is not continued from another.
TEST(LlmFinetune, InitAdapterStartsFromTheGivenAdapterInItsShape) {
  torch::set_num_threads(1);
  test::TempDir dir;
  auto o = small_run(dir, "fresh");
  o.max_steps = 3;
  o.eval_fraction = 0;
  const auto fresh = finetune(o);
  const ModelConfig model = load_config(o.model_dir + "/config.json");

  LoraConfig same;
  same.r = o.r;
  same.lora_alpha = o.alpha;
  same.target_modules = o.targets;
  save_lora_adapter(dir.file("same-init"), init_lora_adapter(same, model, LoraInit::kZero, o.seed));
  auto from_same = o;
  from_same.out_dir = dir.file("from-same");
  from_same.init_adapter = dir.file("same-init");
  from_same.r = 99;  // ignored: the adapter's shape wins
  const auto again = finetune(from_same);
  ASSERT_EQ(again.curve.size(), fresh.curve.size());
  for (std::size_t i = 0; i < fresh.curve.size(); ++i) {
    EXPECT_EQ(again.curve[i].loss, fresh.curve[i].loss) << "step " << i + 1;
    EXPECT_EQ(again.curve[i].grad_norm, fresh.curve[i].grad_norm) << "step " << i + 1;
  }
  expect_same_adapter(dir.file("fresh"), dir.file("from-same"));

  LoraConfig other;
  other.r = 6;
  other.lora_alpha = 3;
  other.target_modules = {"q_proj", "v_proj", "down_proj"};
  other.rank_pattern = {{"v_proj", 2}};
  save_lora_adapter(dir.file("other-init"), init_lora_adapter(other, model, LoraInit::kRandom, 11));
  auto from_other = o;
  from_other.out_dir = dir.file("from-other");
  from_other.init_adapter = dir.file("other-init");
  const auto trained = finetune(from_other);
  EXPECT_NE(trained.curve.front().loss, fresh.curve.front().loss);  // the random B changes the model at once
  const auto written = load_lora_config(dir.file("from-other"));
  EXPECT_EQ(written.r, 6);
  EXPECT_EQ(written.lora_alpha, 3);
  EXPECT_EQ(written.target_modules, other.target_modules);
  ASSERT_EQ(written.rank_pattern.size(), 1u);
  EXPECT_EQ(written.rank_pattern[0].second, 2);
  EXPECT_EQ(load_weights(dir.file("from-other/adapter_model.safetensors")).size(),
            load_weights(dir.file("other-init/adapter_model.safetensors")).size());

  int polls = 0;
  from_other.out_dir = dir.file("stopped");
  ASSERT_TRUE(finetune(from_other, [&] { return ++polls == 1; }).interrupted);
  auto resumed = from_other;
  resumed.r = 3;  // not read with a starting adapter: no reason to refuse the checkpoint
  EXPECT_EQ(finetune(resumed).resumed_from, 1);
  from_other.init_adapter = dir.file("same-init");
  EXPECT_THROW_WITH(finetune(from_other), UsageError, "other settings (init_adapter differ)");
}

TEST(LlmFinetune, TrainingLowersTheLossOfWhatItLearns) {
  test::TempDir dir;
  auto o = small_run(dir, "fit");
  o.dropout = 0;
  o.batch_size = 12;  // every example in every step: the loss of one step is the loss of the data set
  o.grad_accum = 1;
  o.lr = 2e-2;
  o.schedule = "constant";
  o.warmup_ratio = 0;
  o.eval_fraction = 0;
  o.max_steps = 30;
  o.eval_every = 0;
  const auto r = finetune(o);
  // The tiny random model learns slowly; 30 steps take the loss from about 5.8 to about 4.7 nats.
  EXPECT_LT(r.curve.back().loss, r.curve.front().loss - 0.5);
}

TEST(LlmFinetune, DivergenceStopsNamingTheStep) {
  test::TempDir dir;
  auto o = small_run(dir, "diverge");
  o.lr = 1e30;
  o.max_grad_norm = 0;
  o.warmup_ratio = 0;
  EXPECT_THROW_WITH(finetune(o), Error, "fine-tuning diverged at step ");
}

TEST(LlmFinetuneData, ChatExamplesLearnTheAnswerAndItsEndMarkerOnly) {
  test::TempDir dir;
  const auto tokenizer = Tokenizer::load(test::tiny_checkpoint("llama") + "/tokenizer.json");
  const auto data = read_train_jsonl(dir.write("d.jsonl", examples_jsonl(1)), tokenizer, 512);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.chat_template, "llama3");
  const auto& plain = data.examples[0];
  EXPECT_EQ(tokenizer.decode({plain.ids.begin() + static_cast<long>(plain.prompt_len), plain.ids.end()}),
            " steps 5000<|end_of_text|>");
  EXPECT_EQ(plain.ids.front(), *tokenizer.bos_id());
  const auto& chat = data.examples[1];
  EXPECT_EQ(tokenizer.decode({chat.ids.begin() + static_cast<long>(chat.prompt_len), chat.ids.end()}),
            "REM 20%<|eot_id|>");
  EXPECT_NE(tokenizer.decode({chat.ids.begin(), chat.ids.begin() + static_cast<long>(chat.prompt_len)})
                .find("REM 10%"),
            std::string::npos);
  // A completion cut at max_length is counted, a prompt that leaves no room is an error.
  const std::string one = dir.write("one.jsonl", "{\"prompt\": \"steps 1000\", \"completion\": \" steps 5000\"}\n");
  const auto whole = read_train_jsonl(one, tokenizer, 512);
  const auto cut = read_train_jsonl(one, tokenizer, whole.examples[0].prompt_len + 1);
  EXPECT_EQ(cut.n_truncated, 1u);
  EXPECT_EQ(cut.examples[0].n_completion(), 1u);
  EXPECT_EQ(whole.n_truncated, 0u);
  EXPECT_THROW_WITH(read_train_jsonl(dir.file("d.jsonl"), tokenizer, 4), Error, "d.jsonl:1: the prompt has");
}

TEST(LlmFinetuneData, MalformedLinesNameFileAndLine) {
  test::TempDir dir;
  const auto tokenizer = Tokenizer::load(test::tiny_checkpoint("llama") + "/tokenizer.json");
  const std::string good = "{\"prompt\": \"a\", \"completion\": \"b\"}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {good + "{\"prompt\": \"a\"\n", "bad.jsonl:2: not a JSON object"},
      {good + "\n[1, 2]\n", "bad.jsonl:3: expected a JSON object, got array"},
      {good + "{\"prompt\": 3, \"completion\": \"b\"}\n", "bad.jsonl:2: \"prompt\" must be a string"},
      {"{\"prompt\": \"a\", \"completion\": \"\"}\n", "bad.jsonl:1: \"completion\" is empty"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n",
       "bad.jsonl:1: the last message is from 'user', expected 'assistant'"},
      {"{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n",
       "bad.jsonl:1 message 1: \"content\" must be a string"},
      {"\n\n", "holds no examples"},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    EXPECT_THROW_WITH(read_train_jsonl(dir.write("bad.jsonl", text), tokenizer, 64), Error, message);
  }
  EXPECT_THROW_WITH(read_train_jsonl(dir.file("none.jsonl"), tokenizer, 64), Error, "cannot open training data");
}

TEST(LlmLora, DropoutActsOnTheLoraBranchOnlyWhileSet) {
  auto model = Decoder::load(test::tiny_checkpoint("llama"));
  LoraConfig config;
  config.r = 4;
  config.lora_alpha = 8;
  config.targets = LoraConfig::Targets::kAllLinear;
  model->attach(init_lora_adapter(config, model->config(), LoraInit::kZero, 3));
  const auto ids = torch::tensor(std::vector<std::int64_t>{5, 9, 13, 2, 7}).view({1, 5});
  const auto mask = torch::ones({1, 5}, torch::kLong);
  torch::NoGradGuard no_grad;
  const auto base = model->forward(ids, mask);
  model->set_lora_dropout(0.5);
  EXPECT_TRUE(torch::equal(model->forward(ids, mask), base)) << "B = 0: dropout on the LoRA input changes nothing";
  EXPECT_THROW_WITH(model->set_lora_dropout(1.0), UsageError, "lora dropout must be in [0, 1)");

  auto random = Decoder::load(test::tiny_checkpoint("llama"));
  random->attach(init_lora_adapter(config, random->config(), LoraInit::kRandom, 3));
  const auto clean = random->forward(ids, mask);
  random->set_lora_dropout(0.5);
  EXPECT_FALSE(torch::allclose(random->forward(ids, mask), clean));
  random->set_lora_dropout(0.0);
  EXPECT_TRUE(torch::equal(random->forward(ids, mask), clean));
}

TEST(LlmLora, GradientCheckpointingGivesTheSameLossAndGradients) {
  LoraConfig config;
  config.r = 4;
  config.lora_alpha = 8;
  config.targets = LoraConfig::Targets::kAllLinear;
  const auto ids = torch::tensor(std::vector<std::int64_t>{0, 0, 5, 9, 13, 2, 7, 11, 3, 8, 1, 4, 6, 12}).view({2, 7});
  const auto mask = torch::tensor(std::vector<std::int64_t>{0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}).view({2, 7});
  const auto rows = torch::tensor(std::vector<std::int64_t>{0, 0, 1, 1, 1});
  const auto cols = torch::tensor(std::vector<std::int64_t>{4, 5, 2, 3, 5});
  std::vector<std::vector<torch::Tensor>> grads;
  std::vector<double> losses;
  for (bool checkpointing : {false, true}) {
    auto model = Decoder::load(test::tiny_checkpoint("llama"));
    model->attach(init_lora_adapter(config, model->config(), LoraInit::kRandom, 4));
    model->set_lora_trainable(true);
    model->set_lora_dropout(0.2);  // the recomputation must draw the same masks
    model->set_gradient_checkpointing(checkpointing);
    torch::manual_seed(9);
    const auto loss = model->forward_at(ids, mask, rows, cols).logsumexp(-1).sum();
    loss.backward();
    losses.push_back(loss.item<double>());
    grads.emplace_back();
    for (const auto& [name, t] : model->lora_parameters()) {
      ASSERT_TRUE(t.grad().defined()) << name << (checkpointing ? " lost its gradient under checkpointing" : "");
      grads.back().push_back(t.grad().clone());
    }
  }
  EXPECT_EQ(losses[0], losses[1]);
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (std::size_t i = 0; i < grads[0].size(); ++i) {
    EXPECT_TRUE(torch::allclose(grads[0][i], grads[1][i], 1e-5, 1e-7)) << i;
    EXPECT_GT(grads[0][i].abs().max().item<double>(), 0.0) << i;
  }
}

TEST(LlmFinetune, GradientCheckpointingTrainsTheSameAdapter) {
  test::TempDir dir;
  auto o = small_run(dir, "plain");
  const auto plain = finetune(o);
  o.out_dir = dir.file("checkpointed");
  o.gradient_checkpointing = true;
  const auto checkpointed = finetune(o);
  ASSERT_EQ(plain.curve.size(), checkpointed.curve.size());
  for (std::size_t i = 0; i < plain.curve.size(); ++i)
    EXPECT_NEAR(checkpointed.curve[i].loss, plain.curve[i].loss, 1e-6 * plain.curve[i].loss) << "step " << i + 1;
}

TEST(LlmLora, MergeAndUnmergeKeepTheOutputsAndTheAdapter) {
  LoraConfig config;
  config.r = 4;
  config.lora_alpha = 8;
  config.targets = LoraConfig::Targets::kAllLinear;
  auto model = Decoder::load(test::tiny_checkpoint("llama"));
  const auto adapter = init_lora_adapter(config, model->config(), LoraInit::kRandom, 6);
  model->attach(adapter);
  auto q_proj = [&] {
    for (const auto& [name, t] : model->base_weights())
      if (name == "model.layers.0.self_attn.q_proj.weight") return t;
    return torch::Tensor();
  };
  const auto base_q = q_proj().clone();
  const auto ids = torch::tensor(std::vector<std::int64_t>{5, 9, 13, 2, 7}).view({1, 5});
  const auto mask = torch::ones({1, 5}, torch::kLong);
  torch::NoGradGuard no_grad;
  const auto unmerged = model->forward(ids, mask);
  model->merge_adapter();
  EXPECT_TRUE(model->adapter_folded());
  EXPECT_FALSE(torch::equal(q_proj(), base_q)) << "merging changes W";
  EXPECT_TRUE(torch::allclose(model->forward(ids, mask), unmerged, 1e-5, 1e-5));
  EXPECT_THROW_WITH(model->set_lora_trainable(true), Error, "the adapter is merged into the weights");
  model->unmerge_adapter();
  EXPECT_TRUE(torch::allclose(q_proj(), base_q, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(model->forward(ids, mask), unmerged, 1e-5, 1e-5));
  model->set_lora_trainable(true);  // training can go on

  auto for_good = Decoder::load(test::tiny_checkpoint("llama"));
  for_good->attach(adapter, /*merge=*/true);
  EXPECT_THROW_WITH(for_good->unmerge_adapter(), Error, "merged for good (A and B were dropped)");
}

TEST(LlmOptim, SchedulesFollowTransformers) {
  // linear with warmup 2 of 10: 0, 1/2, then (10 - s) / 8.
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kLinear, 0, 2, 10), 0.0);
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kLinear, 1, 2, 10), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kLinear, 2, 2, 10), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kLinear, 6, 2, 10), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kLinear, 10, 2, 10), 0.0);
  // cosine: ½(1 + cos(π (s - 2) / 8)).
  EXPECT_NEAR(lr_factor(LrSchedule::kCosine, 6, 2, 10), 0.5, 1e-15);
  EXPECT_NEAR(lr_factor(LrSchedule::kCosine, 4, 2, 10), 0.5 * (1 + std::cos(M_PI / 4)), 1e-15);
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kConstant, 7, 0, 10), 1.0);
  EXPECT_THROW_WITH(parse_lr_schedule("step"), UsageError, "unknown learning-rate schedule 'step'");
}

TEST(LlmOptim, FirstAdamWStepIsLrTimesTheGradientsSign) {
  // Step 1 from zero moments: m̂ = g, v̂ = g², so p -= lr g / (|g| + eps) (and p *= 1 - lr wd first).
  auto p = torch::tensor(std::vector<double>{1.0, -2.0, 0.5}, torch::kFloat64).requires_grad_(true);
  AdamW opt({p}, AdamWOptions{0.9, 0.999, 1e-8, 0.1});
  p.mutable_grad() = torch::tensor(std::vector<double>{0.3, -1e-3, 0.0}, torch::kFloat64);
  opt.step(0.01);
  const double g[] = {0.3, -1e-3, 0.0}, p0[] = {1.0, -2.0, 0.5};
  for (int i = 0; i < 3; ++i) {
    const double expected = p0[i] * (1 - 0.01 * 0.1) - 0.01 * g[i] / (std::abs(g[i]) + 1e-8);
    EXPECT_NEAR(p[i].item<double>(), expected, 1e-15) << i;
  }
  EXPECT_EQ(opt.steps(), 1);
  // Clipping: one global norm, every gradient scaled by max_norm / norm.
  auto a = torch::tensor(std::vector<double>{3.0}, torch::kFloat64).requires_grad_(true);
  auto b = torch::tensor(std::vector<double>{4.0}, torch::kFloat64).requires_grad_(true);
  a.mutable_grad() = torch::tensor(std::vector<double>{3.0}, torch::kFloat64);
  b.mutable_grad() = torch::tensor(std::vector<double>{4.0}, torch::kFloat64);
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b}, 1.0), 5.0);
  EXPECT_NEAR(a.grad().item<double>(), 0.6, 1e-6);
  EXPECT_NEAR(b.grad().item<double>(), 0.8, 1e-6);
}

TEST(LlmOptim, LossScalerUnscalesSkipsNonFiniteStepsAndGrows) {
  LossScaler scaler(true, 1024.0, /*growth_interval=*/2);
  auto p = torch::zeros({2}, torch::kFloat32).requires_grad_(true);
  p.mutable_grad() = torch::tensor(std::vector<float>{2048.0f, -512.0f});
  EXPECT_TRUE(scaler.unscale({p}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::tensor(std::vector<float>{2.0f, -0.5f})));
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 1024.0);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 2048.0) << "two good steps in a row double it";
  p.mutable_grad() = torch::tensor(std::vector<float>{std::numeric_limits<float>::infinity(), 1.0f});
  EXPECT_FALSE(scaler.unscale({p}));
  scaler.update(false);
  EXPECT_EQ(scaler.scale(), 1024.0);
  EXPECT_EQ(scaler.good_steps(), 0);
  // Disabled (bf16, fp32): the identity.
  LossScaler off(false);
  p.mutable_grad() = torch::tensor(std::vector<float>{3.0f, 4.0f});
  EXPECT_TRUE(off.unscale({p}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::tensor(std::vector<float>{3.0f, 4.0f})));
  EXPECT_EQ(off.scale(), 1.0);
  // Never finite: the scale runs out and the run stops saying so.
  LossScaler doomed(true, 1.0, 2000);
  EXPECT_THROW_WITH(
      [&] {
        for (int i = 0; i < 40; ++i) doomed.update(false);
      }(),
      Error, "loss scale underflow");
}

}  // namespace
}  // namespace sensecf::llm
