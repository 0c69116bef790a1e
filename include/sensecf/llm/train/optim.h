// The optimiser and learning-rate schedule of LoRA fine-tuning, with
// PyTorch's and transformers' semantics so that a run can be compared with
// theirs step by step:
//   AdamW   torch.optim.AdamW (single-tensor path): decoupled weight decay
//           p *= 1 - lr·wd; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
//           p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
//   schedule transformers' get_{linear,cosine,constant}_schedule_with_warmup:
//           the factor of step s (0-based) is s/warmup during warmup, then
//           linear: (total-s)/(total-warmup), cosine: ½(1+cos(π·progress)),
//           constant: 1 — never below 0.
//   clipping torch.nn.utils.clip_grad_norm_: one global L2 norm, every
//           gradient scaled by min(1, max_norm/(norm+1e-6)).
// The state (moments, step count) is plain tensors so that a checkpoint can
// hold it and a resumed run continues bit for bit.
//
// Only light ATen headers here; optim.cpp includes <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sensecf::llm {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // transformers' TrainingArguments default
};

class AdamW {
 public:
  // `params`: leaf tensors that require grad (the adapter's A and B).
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);

  // One update of every parameter with a gradient, at learning rate lr.
  void step(double lr);
  void zero_grad();

  std::int64_t steps() const { return steps_; }
  // exp_avg and exp_avg_sq of parameter i (zeros before the first step).
  const std::vector<at::Tensor>& exp_avg() const { return exp_avg_; }
  const std::vector<at::Tensor>& exp_avg_sq() const { return exp_avg_sq_; }
  // Restores a saved state: the moments are copied into place.
  void restore(std::int64_t steps, const std::vector<at::Tensor>& exp_avg, const std::vector<at::Tensor>& exp_avg_sq);

 private:
  std::vector<at::Tensor> params_, exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  std::int64_t steps_ = 0;
};

enum class LrSchedule { kLinear, kCosine, kConstant };
LrSchedule parse_lr_schedule(const std::string& name);  // linear | cosine | constant; UsageError otherwise
const char* lr_schedule_name(LrSchedule schedule);

// The learning-rate factor of optimiser step `step` (0-based) of `total`.
double lr_factor(LrSchedule schedule, std::int64_t step, std::int64_t warmup, std::int64_t total);

// Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler does
// it: the loss is multiplied by scale() before backward, so small fp16
// gradients do not flush to zero; unscale() divides the gradients back and
// reports whether any is inf/NaN, in which case the optimiser step is
// skipped and the scale halved; after `growth_interval` good steps in a row
// the scale doubles. Disabled (bf16, fp32), it is the identity and touches
// nothing.
class LossScaler {
 public:
  LossScaler(bool enabled, double init_scale = 65536.0, int growth_interval = 2000);
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // Divides every gradient by scale(); true when all are finite (step), false
  // when one is not (skip the step; update() then backs off).
  bool unscale(const std::vector<at::Tensor>& params) const;
  // After a step (finite) or a skipped one. Throws a sensecf::Error when the
  // scale falls below 2^-24 (the gradients are not finite at any scale).
  void update(bool finite);
  int good_steps() const { return good_steps_; }
  void restore(double scale, int good_steps);

 private:
  bool enabled_;
  double scale_;
  int growth_interval_;
  int good_steps_ = 0;
};

// Scales the gradients of `params` so that their global L2 norm is at most
// max_norm (> 0); returns the norm before clipping (inf/nan when a gradient is).
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace sensecf::llm
