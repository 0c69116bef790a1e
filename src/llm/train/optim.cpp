// AdamW, the learning-rate schedules and gradient clipping (see train/optim.h).
#include "sensecf/llm/train/optim.h"

#include <spdlog/fmt/fmt.h>
#include <torch/torch.h>

#include <cmath>

#include "sensecf/core/error.h"

namespace sensecf::llm {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    if (!p.requires_grad()) throw Error("AdamW: a parameter does not require grad");
    exp_avg_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve).detach());
    exp_avg_sq_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve).detach());
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, static_cast<double>(steps_)));
  const double step_size = lr / bias1;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto& g = p.grad();
    if (!g.defined()) continue;
    p.mul_(1.0 - lr * options_.weight_decay);
    exp_avg_[i].lerp_(g, 1.0 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    const auto denom = (exp_avg_sq_[i].sqrt() / bias2_sqrt).add_(options_.eps);
    p.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

void AdamW::restore(std::int64_t steps, const std::vector<at::Tensor>& exp_avg,
                    const std::vector<at::Tensor>& exp_avg_sq) {
  if (exp_avg.size() != params_.size() || exp_avg_sq.size() != params_.size()) {
    throw Error(fmt::format("optimizer state has {} / {} moments for {} parameters", exp_avg.size(),
                            exp_avg_sq.size(), params_.size()));
  }
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg[i].sizes().equals(params_[i].sizes()) || !exp_avg_sq[i].sizes().equals(params_[i].sizes())) {
      throw Error(fmt::format("optimizer state: moment {} has shape {}, the parameter {}", i,
                              fmt::join(exp_avg[i].sizes(), "x"), fmt::join(params_[i].sizes(), "x")));
    }
    exp_avg_[i].copy_(exp_avg[i]);
    exp_avg_sq_[i].copy_(exp_avg_sq[i]);
  }
  steps_ = steps;
}

LrSchedule parse_lr_schedule(const std::string& name) {
  if (name == "linear") return LrSchedule::kLinear;
  if (name == "cosine") return LrSchedule::kCosine;
  if (name == "constant") return LrSchedule::kConstant;
  throw UsageError("unknown learning-rate schedule '" + name + "'", "use linear, cosine or constant");
}

const char* lr_schedule_name(LrSchedule schedule) {
  switch (schedule) {
    case LrSchedule::kLinear: return "linear";
    case LrSchedule::kCosine: return "cosine";
    case LrSchedule::kConstant: return "constant";
  }
  return "?";
}

double lr_factor(LrSchedule schedule, std::int64_t step, std::int64_t warmup, std::int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup));
  const double span = static_cast<double>(std::max<std::int64_t>(1, total - warmup));
  switch (schedule) {
    case LrSchedule::kLinear:
      return std::max(0.0, static_cast<double>(total - step) / span);
    case LrSchedule::kCosine: {
      const double progress = static_cast<double>(step - warmup) / span;
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
    }
    case LrSchedule::kConstant:
      return 1.0;
  }
  return 1.0;
}

LossScaler::LossScaler(bool enabled, double init_scale, int growth_interval)
    : enabled_(enabled), scale_(init_scale), growth_interval_(growth_interval) {}

bool LossScaler::unscale(const std::vector<at::Tensor>& params) const {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  bool finite = true;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    p.grad().div_(scale_);
    finite = finite && torch::isfinite(p.grad()).all().item<bool>();
  }
  return finite;
}

void LossScaler::update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    scale_ *= 0.5;
    good_steps_ = 0;
    if (scale_ < std::ldexp(1.0, -24)) {
      throw Error(fmt::format("loss scale underflow: the gradients are not finite even at scale {:g}", scale_),
                  "the model diverged in fp16: lower --lr, or train in bfloat16");
    }
    return;
  }
  if (++good_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    good_steps_ = 0;
  }
}

void LossScaler::restore(double scale, int good_steps) {
  scale_ = scale;
  good_steps_ = good_steps;
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  // As torch.nn.utils.clip_grad_norm_ computes it: in the gradients' dtype,
  // the coefficient clamped at 1 and applied to every gradient.
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2));
  }
  if (norms.empty()) return 0.0;
  const auto total = torch::stack(norms).norm(2);
  const auto coef = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
  for (const auto& p : params) {
    if (p.grad().defined()) p.grad().mul_(coef);
  }
  return total.item<double>();
}

}  // namespace sensecf::llm
