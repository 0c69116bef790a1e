// LoRA fine-tuning (see train/trainer.h).
#include "sensecf/llm/train/trainer.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "sensecf/core/communicator.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/llm/io/weights.h"
#include "sensecf/llm/lora/lora.h"
#include "sensecf/llm/model/decoder.h"
#include "sensecf/llm/model/device_memory.h"
#include "sensecf/llm/train/batch.h"
#include "sensecf/llm/train/data.h"
#include "sensecf/llm/train/optim.h"

namespace sensecf::llm {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void declare_options(Options& options, FinetuneOptions& f) {
  options.add("finetune.model", &f.model_dir, "Hugging Face model directory (config.json, weights, tokenizer.json)",
              "model");
  options.add("finetune.data", &f.data_path,
              "training JSONL: {\"prompt\", \"completion\"} or {\"messages\": [...]} per line", "data");
  options.add("finetune.eval_data", &f.eval_path, "evaluation JSONL (default: hold out eval_fraction of --data)",
              "eval-data");
  options.add("finetune.out", &f.out_dir, "output directory: adapter, train_curve.csv, checkpoint/", "out");
  options.add("finetune.init_adapter", &f.init_adapter,
              "start from this PEFT adapter directory instead of a fresh one; its r, alpha, rslora and targets are "
              "used",
              "init-adapter");
  options.add("finetune.max_length", &f.max_length, "tokens per example, prompt + completion", "max-length");
  options.add("finetune.eval_fraction", &f.eval_fraction, "share of --data held out for evaluation (0: none)",
              "eval-fraction");
  options.add("finetune.r", &f.r, "LoRA rank", "r");
  options.add("finetune.alpha", &f.alpha, "lora_alpha (scaling alpha / r)", "alpha");
  options.add("finetune.dropout", &f.dropout, "dropout on the LoRA branch's input while training", "dropout");
  options.add("finetune.rslora", &f.rslora, "rank-stabilised scaling alpha / sqrt(r)", "rslora");
  options.add("finetune.targets", &f.targets, "projections that get an adapter (q_proj ... down_proj)", "targets");
  options.add("finetune.epochs", &f.epochs, "passes over the training examples", "epochs");
  options.add("finetune.max_steps", &f.max_steps, "optimiser steps (> 0 overrides epochs)", "max-steps");
  options.add("finetune.batch_size", &f.batch_size, "examples per micro-batch", "batch-size");
  options.add("finetune.grad_accum", &f.grad_accum, "micro-batches per optimiser step", "grad-accum");
  options.add("finetune.lr", &f.lr, "peak learning rate (AdamW)", "lr");
  options.add("finetune.schedule", &f.schedule, "learning-rate schedule after warmup", "schedule")
      .choices({"linear", "cosine", "constant"});
  options.add("finetune.warmup_ratio", &f.warmup_ratio, "share of the steps with a linear warmup", "warmup-ratio");
  options.add("finetune.weight_decay", &f.weight_decay, "AdamW's decoupled weight decay", "weight-decay");
  options.add("finetune.max_grad_norm", &f.max_grad_norm, "clip the global gradient norm (<= 0: off)",
              "max-grad-norm");
  options.add("finetune.group_by_length", &f.group_by_length,
              "batch examples of similar length together (less padding)", "group-by-length");
  options.add("finetune.gradient_checkpointing", &f.gradient_checkpointing,
              "keep one layer's activations and recompute the others in backward (same numbers, less memory)",
              "gradient-checkpointing")
      .not_hashed();
  options.add("finetune.eval_every", &f.eval_every, "evaluation loss every N steps (0: at the end only)",
              "eval-every");
  options.add("finetune.save_every", &f.save_every, "checkpoint every N steps (0: when stopped and at the end)",
              "save-every");
  options.add("finetune.log_every", &f.log_every, "progress line every N steps", "log-every").not_hashed();
  options.add("finetune.seed", &f.seed, "adapter init, data order, held-out split and dropout", "seed");
  options.add("finetune.resume", &f.resume, "continue from OUT/checkpoint when there is one", "resume")
      .not_hashed();
  declare_options(options, f.model);
  options.add_check([&f] {
    if (f.r <= 0)
      throw UsageError(fmt::format("finetune.r must be positive, got {}", f.r), "e.g. --r 16 (the default)");
    if (!(f.dropout >= 0 && f.dropout < 1))
      throw UsageError(fmt::format("finetune.dropout must be in [0, 1), got {}", f.dropout),
                       "e.g. --dropout 0.03 (the default), or 0 for none");
    if (f.batch_size <= 0 || f.grad_accum <= 0)
      throw UsageError(fmt::format("finetune.batch_size and grad_accum must be positive, got {} and {}",
                                   f.batch_size, f.grad_accum),
                       "e.g. --batch-size 4 --grad-accum 4 (the defaults)");
    if (f.epochs <= 0 && f.max_steps <= 0)
      throw UsageError("finetune.epochs or finetune.max_steps must be positive",
                       "e.g. --epochs 2 (the default), or --max-steps N for a fixed number of steps");
    if (!(f.lr > 0))
      throw UsageError(fmt::format("finetune.lr must be positive, got {}", f.lr),
                       "e.g. --lr 2e-4 (the default)");
    if (!(f.eval_fraction >= 0 && f.eval_fraction < 1))
      throw UsageError(fmt::format("finetune.eval_fraction must be in [0, 1), got {}", f.eval_fraction),
                       "e.g. --eval-fraction 0.1 (the default), or 0 for no evaluation");
    if (!(f.warmup_ratio >= 0 && f.warmup_ratio < 1))
      throw UsageError(fmt::format("finetune.warmup_ratio must be in [0, 1), got {}", f.warmup_ratio),
                       "e.g. --warmup-ratio 0.03, or 0 (the default) for no warmup");
    if (f.max_length < 2)
      throw UsageError(fmt::format("finetune.max_length must be at least 2, got {}", f.max_length),
                       "e.g. --max-length 512 (the default)");
  });
}

namespace {

// The micro-batches of one epoch: a permutation from the seed, grouped by
// length within windows of 16 batches when asked.
std::vector<std::vector<std::size_t>> epoch_batches(const std::vector<TrainExample>& examples, int epoch,
                                                    const FinetuneOptions& o) {
  std::vector<std::size_t> order(examples.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  Rng rng(derive_seed(o.seed, "finetune/epoch/" + std::to_string(epoch)));
  rng.shuffle(order);
  const auto batch = static_cast<std::size_t>(o.batch_size);
  if (o.group_by_length) {
    const std::size_t window = batch * 16;
    for (std::size_t start = 0; start < order.size(); start += window) {
      const auto end = order.begin() + static_cast<long>(std::min(order.size(), start + window));
      std::stable_sort(order.begin() + static_cast<long>(start), end, [&](std::size_t a, std::size_t b) {
        return examples[a].ids.size() > examples[b].ids.size();
      });
    }
  }
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t start = 0; start < order.size(); start += batch)
    out.emplace_back(order.begin() + static_cast<long>(start),
                     order.begin() + static_cast<long>(std::min(order.size(), start + batch)));
  return out;
}

std::int64_t steps_per_epoch(std::size_t n_train, const FinetuneOptions& o) {
  const auto n_batches = (static_cast<std::int64_t>(n_train) + o.batch_size - 1) / o.batch_size;
  return (n_batches + o.grad_accum - 1) / o.grad_accum;
}

// The starting adapter's files, hashed ("" without one).
std::string init_adapter_identity(const std::string& dir) {
  if (dir.empty()) return "";
  return fnv1a_file_hex((fs::path(dir) / "adapter_config.json").string()) +
         fnv1a_file_hex((fs::path(dir) / "adapter_model.safetensors").string());
}

// What must be equal for a checkpoint to be continued.
nlohmann::json run_identity(const FinetuneOptions& o) {
  // With a starting adapter its files stand for the LoRA shape: --r, --alpha,
  // --rslora and --targets are not read, so they do not count.
  const bool given = !o.init_adapter.empty();
  const auto shape = [given](const auto& value) { return given ? nlohmann::json() : nlohmann::json(value); };
  return {{"model", fs::absolute(o.model_dir).lexically_normal().string()},
          {"data", fnv1a_file_hex(o.data_path)},
          {"eval_data", o.eval_path.empty() ? "" : fnv1a_file_hex(o.eval_path)},
          {"init_adapter", init_adapter_identity(o.init_adapter)},
          {"dtype", o.model.dtype},
          {"quant", o.model.quant},
          {"max_length", o.max_length},
          {"eval_fraction", o.eval_fraction},
          {"r", shape(o.r)},
          {"alpha", shape(o.alpha)},
          {"dropout", o.dropout},
          {"rslora", shape(o.rslora)},
          {"targets", shape(o.targets)},
          {"epochs", o.epochs},
          {"max_steps", o.max_steps},
          {"batch_size", o.batch_size},
          {"grad_accum", o.grad_accum},
          {"lr", o.lr},
          {"schedule", o.schedule},
          {"warmup_ratio", o.warmup_ratio},
          {"weight_decay", o.weight_decay},
          {"max_grad_norm", o.max_grad_norm},
          {"group_by_length", o.group_by_length},
          {"seed", o.seed}};
}

nlohmann::json point_json(const TrainPoint& p) {
  return {{"step", p.step}, {"epoch", p.epoch}, {"loss", p.loss},
          {"eval_loss", std::isfinite(p.eval_loss) ? nlohmann::json(p.eval_loss) : nlohmann::json()},
          {"lr", p.lr}, {"grad_norm", p.grad_norm}, {"tokens", p.tokens}, {"seconds", p.seconds}};
}

TrainPoint point_from_json(const nlohmann::json& j) {
  TrainPoint p;
  p.step = j.at("step").get<std::int64_t>();
  p.epoch = j.at("epoch").get<double>();
  p.loss = j.at("loss").get<double>();
  if (!j.at("eval_loss").is_null()) p.eval_loss = j.at("eval_loss").get<double>();
  p.lr = j.at("lr").get<double>();
  p.grad_norm = j.at("grad_norm").get<double>();
  p.tokens = j.at("tokens").get<std::int64_t>();
  p.seconds = j.at("seconds").get<double>();
  return p;
}

void write_curve(const std::string& path, const std::vector<TrainPoint>& curve) {
  std::ofstream out(path + ".tmp");
  out << "step,epoch,loss,eval_loss,lr,grad_norm,tokens,seconds\n";
  for (const auto& p : curve) {
    out << fmt::format("{},{},{},{},{},{},{},{:.6g}\n", p.step, p.epoch, p.loss,
                       std::isfinite(p.eval_loss) ? fmt::format("{}", p.eval_loss) : "", p.lr, p.grad_norm, p.tokens,
                       p.seconds);
  }
  out.close();
  if (!out) throw Error("cannot write " + path, "is the disk full?");
  fs::rename(path + ".tmp", path);
}

// The adapter as attached to the model, in the LoraAdapter form save_lora_adapter writes.
LoraAdapter current_adapter(const Decoder& model, const LoraConfig& config) {
  LoraAdapter a;
  a.config = config;
  a.modules = model.adapter_modules();
  const auto params = model.lora_parameters();  // A, B per module, in module order
  for (std::size_t i = 0; i < a.modules.size(); ++i)
    a.weights[a.modules[i].name] = {params[2 * i].second.detach(), params[2 * i + 1].second.detach()};
  return a;
}

struct Position {
  std::int64_t step = 0;
  int epoch = 0;
  std::size_t next_batch = 0;  // in epoch_batches(epoch)
  std::int64_t tokens = 0;
  double seconds = 0;
};

class Run {
 public:
  Run(const FinetuneOptions& o, const std::function<bool()>& stop, Communicator& comm)
      : o_(o), stop_(stop), comm_(comm), lead_(comm.rank() == 0) {}

  FinetuneResult go() {
    load();
    const std::string checkpoint = (fs::path(o_.out_dir) / "checkpoint").string();
    if (o_.resume && fs::exists(checkpoint + "/trainer_state.json")) {
      restore(checkpoint);
    } else if (initial_) {
      model_->attach(std::move(*initial_));
    } else {
      model_->attach(init_lora_adapter(config_, model_->config(), LoraInit::kZero, o_.seed));
    }
    initial_.reset();
    model_->set_lora_trainable(true);
    for (auto& [name, t] : model_->lora_parameters()) params_.push_back(t);
    optimizer_ = std::make_unique<AdamW>(params_, AdamWOptions{0.9, 0.999, 1e-8, o_.weight_decay});
    if (!saved_moments_.first.empty()) optimizer_->restore(pos_.step, saved_moments_.first, saved_moments_.second);
    result_.resumed_from = pos_.step;
    train(checkpoint);
    return result_;
  }

 private:
  void load() {
    const std::string tokenizer_path = (fs::path(o_.model_dir) / "tokenizer.json").string();
    if (!fs::exists(tokenizer_path))
      throw Error("'" + o_.model_dir + "' has no tokenizer.json", "fine-tuning needs the model's tokenizer");
    const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
    ModelOptions mo = o_.model;
    if (!mo.adapter.empty())
      throw UsageError("finetune trains a new adapter: do not pass lm.adapter",
                       "drop --adapter (lm.adapter); the new adapter is written to --out");
    model_ = Decoder::load(o_.model_dir, mo);
    model_->set_gradient_checkpointing(o_.gradient_checkpointing);
    scaler_ = LossScaler(model_->dtype() == torch::kFloat16);
    TrainData data = read_train_jsonl(o_.data_path, tokenizer, o_.max_length);
    result_.n_truncated = data.n_truncated;
    if (!o_.eval_path.empty()) {
      TrainData eval = read_train_jsonl(o_.eval_path, tokenizer, o_.max_length);
      result_.n_truncated += eval.n_truncated;
      train_ = std::move(data.examples);
      eval_ = std::move(eval.examples);
    } else {
      std::vector<std::size_t> order(data.examples.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      Rng rng(derive_seed(o_.seed, "finetune/eval-split"));
      rng.shuffle(order);
      const auto n_eval = static_cast<std::size_t>(std::floor(o_.eval_fraction * static_cast<double>(order.size())));
      if (n_eval >= order.size())
        throw Error(
            fmt::format("no training example is left after holding out the evaluation split ({} of {} "
                        "examples in {})",
                        n_eval, order.size(), o_.data_path),
            "lower --eval-fraction, pass the evaluation examples with --eval-data, or add examples to "
            "--data");
      std::sort(order.begin(), order.begin() + static_cast<long>(n_eval));
      std::vector<bool> held(order.size(), false);
      for (std::size_t i = 0; i < n_eval; ++i) held[order[i]] = true;
      for (std::size_t i = 0; i < data.examples.size(); ++i)
        (held[i] ? eval_ : train_).push_back(std::move(data.examples[i]));
    }
    result_.n_train = train_.size();
    result_.n_eval = eval_.size();
    if (result_.n_truncated > 0 && lead_)
      spdlog::warn("finetune: {} completions were cut at max_length {}", result_.n_truncated, o_.max_length);

    if (!o_.init_adapter.empty()) {
      // The given adapter's shape (rank and alpha patterns included) is the
      // run's; it is also what a checkpoint holds, so a resumed run reads the
      // same config back.
      initial_ = load_lora_adapter(o_.init_adapter, model_->config(), model_->device());
      config_ = initial_->config;
      if (lead_) {
        spdlog::info("finetune: starting from the adapter in '{}' (r {}, alpha {}, rslora {}); --r, --alpha, "
                     "--rslora and --targets are taken from it",
                     o_.init_adapter, config_.r, config_.lora_alpha, config_.use_rslora);
      }
    } else {
      config_.r = o_.r;
      config_.lora_alpha = o_.alpha;
      config_.use_rslora = o_.rslora;
      config_.targets = LoraConfig::Targets::kList;
      config_.target_modules = o_.targets;
    }
    config_.lora_dropout = o_.dropout;
    config_.base_model_name_or_path = o_.model_dir;
    total_ = o_.max_steps > 0 ? o_.max_steps : steps_per_epoch(train_.size(), o_) * o_.epochs;
    warmup_ = static_cast<std::int64_t>(std::ceil(o_.warmup_ratio * static_cast<double>(total_)));
    schedule_ = parse_lr_schedule(o_.schedule);
    result_.total_steps = total_;
    identity_ = run_identity(o_);  // hashes the data files once, not at every checkpoint
    if (lead_) {
      spdlog::info("finetune: {} training and {} evaluation examples, {} steps of {} x {} examples, LoRA r {} alpha "
                   "{} dropout {} on {}; {}",
                   train_.size(), eval_.size(), total_, o_.batch_size, o_.grad_accum, config_.r, config_.lora_alpha,
                   o_.dropout,
                   config_.targets == LoraConfig::Targets::kList ? join(config_.target_modules, ",")
                                                                 : "the adapter's targets",
                   comm_.describe());
    }
  }

  void restore(const std::string& dir) {
    const std::string state_path = dir + "/trainer_state.json";
    nlohmann::json state;
    try {
      std::ifstream in(state_path);
      state = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("'{}' is not a trainer state: {}", state_path, e.what()),
                  "delete the checkpoint directory to start over, or pass --resume false");
    }
    if (state.value("identity", nlohmann::json()) != identity_) {
      std::vector<std::string> changed;
      const auto saved = state.value("identity", nlohmann::json::object());
      for (const auto& [key, value] : identity_.items())
        if (saved.value(key, nlohmann::json()) != value) changed.push_back(key);
      throw UsageError(fmt::format("'{}' was written by a run with other settings ({} differ)", dir, join(changed, ", ")),
                       "use the same options to continue it, another --out, or --resume false to start over");
    }
    try {
      model_->attach(load_lora_adapter(dir, model_->config()));
      const WeightMap moments = load_weights(dir + "/optimizer.safetensors", torch::kFloat32);
      for (const auto& [name, t] : model_->lora_parameters()) {
        saved_moments_.first.push_back(moments.at("exp_avg." + name));
        saved_moments_.second.push_back(moments.at("exp_avg_sq." + name));
      }
      pos_.step = state.at("step").get<std::int64_t>();
      pos_.epoch = state.at("epoch").get<int>();
      pos_.next_batch = state.at("next_batch").get<std::size_t>();
      pos_.tokens = state.at("tokens").get<std::int64_t>();
      pos_.seconds = state.at("seconds").get<double>();
      scaler_.restore(state.value("loss_scale", 65536.0), state.value("loss_scale_good_steps", 0));
      for (const auto& p : state.at("curve")) result_.curve.push_back(point_from_json(p));
    } catch (const std::out_of_range& e) {
      throw Error(fmt::format("checkpoint '{}' is incomplete: {}", dir, e.what()), "delete it to start over");
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("checkpoint '{}' is incomplete: {}", dir, e.what()), "delete it to start over");
    }
    if (lead_) spdlog::info("finetune: resuming from '{}' at step {}/{}", dir, pos_.step, total_);
  }

  void save_checkpoint(const std::string& dir) {
    if (!lead_) return;
    const std::string tmp = dir + ".tmp", old = dir + ".old";
    fs::remove_all(tmp);
    save_lora_adapter(tmp, current_adapter(*model_, config_));
    WeightMap moments;
    const auto params = model_->lora_parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
      moments["exp_avg." + params[i].first] = optimizer_->exp_avg()[i];
      moments["exp_avg_sq." + params[i].first] = optimizer_->exp_avg_sq()[i];
    }
    save_weights(tmp + "/optimizer.safetensors", moments);
    nlohmann::json curve = nlohmann::json::array();
    for (const auto& p : result_.curve) curve.push_back(point_json(p));
    const nlohmann::json state = {{"identity", identity_}, {"step", pos_.step},   {"total_steps", total_},
                                  {"epoch", pos_.epoch},          {"next_batch", pos_.next_batch},
                                  {"tokens", pos_.tokens},        {"seconds", pos_.seconds},
                                  {"loss_scale", scaler_.scale()}, {"loss_scale_good_steps", scaler_.good_steps()},
                                  {"curve", curve}};
    {
      std::ofstream out(tmp + "/trainer_state.json");
      out << state.dump(1) << "\n";
      if (!out) throw Error("cannot write " + tmp + "/trainer_state.json", "is the disk full?");
    }
    fs::remove_all(old);
    if (fs::exists(dir)) fs::rename(dir, old);
    fs::rename(tmp, dir);
    fs::remove_all(old);
    spdlog::info("finetune: checkpoint at step {} in '{}'", pos_.step, dir);
  }

  double evaluate() {
    if (eval_.empty()) return std::numeric_limits<double>::quiet_NaN();
    torch::NoGradGuard no_grad;
    model_->set_lora_dropout(0.0);
    double sum = 0;
    std::int64_t n = 0;
    for (std::size_t start = 0; start < eval_.size(); start += static_cast<std::size_t>(o_.batch_size)) {
      std::vector<std::size_t> which;
      for (std::size_t i = start; i < std::min(eval_.size(), start + static_cast<std::size_t>(o_.batch_size)); ++i)
        which.push_back(i);
      const TrainBatch b = make_train_batch(eval_, which, model_->device());
      sum += completion_loss_sum(*model_, b).item<double>();
      n += b.n_loss_tokens;
    }
    return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  }

  void train(const std::string& checkpoint) {
    double session_seconds = 0;
    std::int64_t session_tokens = 0;
    while (pos_.step < total_) {
      const auto batches = epoch_batches(train_, pos_.epoch, o_);
      while (pos_.next_batch < batches.size() && pos_.step < total_) {
        const auto start = Clock::now();
        const std::size_t end = std::min(batches.size(), pos_.next_batch + static_cast<std::size_t>(o_.grad_accum));
        // Every rank knows the whole step (the data order is the seed's): the
        // token counts are global, the micro-batches are dealt round robin.
        std::int64_t loss_tokens = 0, tokens = 0;
        std::vector<TrainBatch> micro;
        for (std::size_t i = pos_.next_batch; i < end; ++i) {
          for (auto e : batches[i]) {
            loss_tokens += loss_token_count(train_[e]);
            tokens += static_cast<std::int64_t>(train_[e].ids.size());
          }
          if (static_cast<int>((i - pos_.next_batch) % static_cast<std::size_t>(comm_.size())) == comm_.rank())
            micro.push_back(make_train_batch(train_, batches[i], model_->device()));
        }
        model_->set_lora_dropout(o_.dropout);
        torch::manual_seed(derive_seed(o_.seed, fmt::format("finetune/dropout/{}/{}", pos_.step, comm_.rank())));
        double loss_sum = 0;
        for (const auto& b : micro) {
          if (b.n_loss_tokens == 0) continue;
          const auto loss = completion_loss_sum(*model_, b);
          loss_sum += loss.item<double>();
          if (scaler_.enabled()) {
            (loss * (scaler_.scale() / static_cast<double>(loss_tokens))).backward();
          } else {
            (loss / static_cast<double>(loss_tokens)).backward();
          }
        }
        if (comm_.size() > 1) {
          reduce_gradients();
          comm_.all_reduce_sum(&loss_sum, 1);
        }
        const double loss = loss_sum / static_cast<double>(std::max<std::int64_t>(1, loss_tokens));
        // fp16: gradients back to their true size; a step with inf/NaN ones is
        // skipped and the scale halved (the schedule still advances, as in
        // transformers' Trainer).
        const bool finite = scaler_.unscale(params_);
        if (scaler_.enabled() && !finite) {
          optimizer_->zero_grad();
          if (lead_) {
            spdlog::warn("finetune: step {} skipped: inf/NaN gradients at loss scale {:g}", pos_.step + 1,
                         scaler_.scale());
          }
        }
        scaler_.update(finite);
        const double norm =
            (finite && o_.max_grad_norm > 0) ? clip_grad_norm(params_, o_.max_grad_norm) : 0.0;
        if ((!std::isfinite(loss) && !scaler_.enabled()) || !std::isfinite(norm)) {
          throw Error(fmt::format("fine-tuning diverged at step {}: loss {}, gradient norm {}", pos_.step + 1, loss,
                                  norm),
                      fs::exists(checkpoint) ? "lower --lr or raise --warmup-ratio; the last good state is in " + checkpoint
                                             : "lower --lr or raise --warmup-ratio");
        }
        const double lr = o_.lr * lr_factor(schedule_, pos_.step, warmup_, total_);
        if (finite) optimizer_->step(lr);
        optimizer_->zero_grad();
        ++pos_.step;
        pos_.next_batch = end;
        pos_.tokens += tokens;
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        pos_.seconds += seconds;
        session_seconds += seconds;
        session_tokens += tokens;

        TrainPoint p;
        p.step = pos_.step;
        p.epoch = static_cast<double>(pos_.epoch) +
                  static_cast<double>(pos_.next_batch) / static_cast<double>(std::max<std::size_t>(1, batches.size()));
        p.loss = loss;
        p.lr = lr;
        p.grad_norm = norm;
        p.tokens = pos_.tokens;
        p.seconds = pos_.seconds;
        const bool last = pos_.step == total_;
        if ((o_.eval_every > 0 && pos_.step % o_.eval_every == 0) || last) p.eval_loss = evaluate();
        result_.curve.push_back(p);
        if (lead_ && (pos_.step == 1 || last || (o_.log_every > 0 && pos_.step % o_.log_every == 0) ||
                      std::isfinite(p.eval_loss))) {
          const double rate = session_seconds > 0 ? static_cast<double>(session_tokens) / session_seconds : 0;
          const double eta = static_cast<double>(total_ - pos_.step) * session_seconds /
                             static_cast<double>(pos_.step - result_.resumed_from);
          const auto device_peak = peak_device_memory(model_->device());
          spdlog::info("finetune: step {}/{} (epoch {:.2f}) loss {:.4f}{} lr {:.3g} grad-norm {:.3g} | {:.0f} tok/s | "
                       "ETA {} | peak RSS {:.0f} MiB{}",
                       pos_.step, total_, p.epoch, loss,
                       std::isfinite(p.eval_loss) ? fmt::format(" eval {:.4f}", p.eval_loss) : "", lr, norm, rate,
                       std::isfinite(eta) ? format_duration(eta) : "?", peak_host_memory() / (1024.0 * 1024.0),
                       device_peak ? fmt::format(", {} peak {:.2f} GiB", model_->device().str(),
                                                 *device_peak / (1024.0 * 1024.0 * 1024.0))
                                   : "");
        }
        if (o_.save_every > 0 && pos_.step % o_.save_every == 0 && !last) save_checkpoint(checkpoint);
        if (!last && comm_.any(stop_ && stop_())) {
          save_checkpoint(checkpoint);
          result_.interrupted = true;
          finish(session_tokens, session_seconds);
          if (lead_) {
            spdlog::warn("finetune: stopped at step {}/{}; run the same command again to continue", pos_.step, total_);
          }
          return;
        }
      }
      if (pos_.next_batch >= batches.size()) {
        ++pos_.epoch;
        pos_.next_batch = 0;
      }
    }
    save_checkpoint(checkpoint);
    if (lead_) {
      save_lora_adapter(o_.out_dir, current_adapter(*model_, config_), {{"sensecf_steps", std::to_string(pos_.step)}});
    }
    finish(session_tokens, session_seconds);
    const auto& last = result_.curve.empty() ? TrainPoint{} : result_.curve.back();
    if (lead_) spdlog::info("finetune: done, {} steps; last loss {:.4f}, eval loss {:.4f}; adapter in '{}'", pos_.step,
                 last.loss, last.eval_loss, o_.out_dir);
  }

  // Sums every LoRA gradient across the ranks (a rank without a micro-batch
  // in this step contributes zeros). One flat fp32 buffer per step: in device
  // memory when the model is on a GPU and the communicator sums device
  // buffers (NCCL), else in host memory.
  void reduce_gradients() {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (auto& p : params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad().reshape({-1}));
    }
    const bool on_device = model_->device().is_cuda() && comm_.device_buffers();
    auto flat = torch::cat(grads).to(on_device ? model_->device() : torch::Device(torch::kCPU), torch::kFloat32)
                    .contiguous();
    if (on_device) {
      comm_.all_reduce_sum_device(flat.data_ptr<float>(), static_cast<std::size_t>(flat.numel()));
    } else {
      comm_.all_reduce_sum(flat.data_ptr<float>(), static_cast<std::size_t>(flat.numel()));
    }
    std::int64_t offset = 0;
    for (auto& p : params_) {
      const auto n = p.numel();
      p.grad().copy_(flat.narrow(0, offset, n).view(p.sizes()));
      offset += n;
    }
  }

  void finish(std::int64_t session_tokens, double session_seconds) {
    result_.steps = pos_.step;
    result_.tokens_per_second = session_seconds > 0 ? static_cast<double>(session_tokens) / session_seconds : 0;
    if (lead_) write_curve((fs::path(o_.out_dir) / "train_curve.csv").string(), result_.curve);
  }

  const FinetuneOptions& o_;
  std::function<bool()> stop_;
  Communicator& comm_;
  bool lead_;  // rank 0: logs progress, writes checkpoints, the curve and the adapter
  std::unique_ptr<Decoder> model_;
  std::vector<TrainExample> train_, eval_;
  LoraConfig config_;
  std::optional<LoraAdapter> initial_;  // init_adapter, until attached
  std::int64_t total_ = 0, warmup_ = 0;
  LrSchedule schedule_ = LrSchedule::kLinear;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<AdamW> optimizer_;
  LossScaler scaler_{false};  // fp16 only
  nlohmann::json identity_;   // run_identity: what a checkpoint must match to be continued
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> saved_moments_;
  Position pos_;
  FinetuneResult result_;
};

}  // namespace

FinetuneResult finetune(const FinetuneOptions& options, const std::function<bool()>& stop_requested,
                        Communicator* comm) {
  if (options.model_dir.empty()) throw UsageError("no model given", "pass --model DIR (a Hugging Face model directory)");
  if (options.data_path.empty()) throw UsageError("no training data given", "pass --data FILE.jsonl");
  if (options.out_dir.empty()) throw UsageError("no output directory given", "pass --out DIR");
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec)
    throw Error("cannot create '" + options.out_dir + "': " + ec.message(),
                "is the parent directory writable? Or pass another --out");
  SingleProcess single;
  Run run(options, stop_requested, comm ? *comm : single);
  return run.go();
}

}  // namespace sensecf::llm
