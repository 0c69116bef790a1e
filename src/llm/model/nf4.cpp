// NF4 weights (see model/nf4.h).
#include "sensecf/llm/model/nf4.h"

#include <spdlog/fmt/fmt.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "sensecf/core/error.h"

namespace sensecf::llm {
namespace {

constexpr std::int64_t kDoubleQuantBlock = 256;

// Thresholds halfway between consecutive code values: bucketize against them
// gives the nearest code value, a tie going to the lower index.
torch::Tensor midpoints(const float* code, std::size_t n, const torch::Device& device) {
  std::vector<float> mid(n - 1);
  for (std::size_t i = 0; i + 1 < n; ++i) mid[i] = (code[i] + code[i + 1]) / 2;
  return torch::tensor(mid, torch::kFloat32).to(device);
}

torch::Tensor code_tensor(const float* code, std::size_t n, const torch::Device& device) {
  return torch::from_blob(const_cast<float*>(code), {static_cast<std::int64_t>(n)}, torch::kFloat32).to(device).clone();
}

// Blockwise: per block of `block` values, scale = max |v|, index = nearest code
// value to v / scale (0 for an all-zero block).
std::pair<torch::Tensor, torch::Tensor> quantize_blocks(const torch::Tensor& flat, std::int64_t block, const float* code,
                                                        std::size_t n_code) {
  const auto n = flat.numel();
  const auto n_blocks = (n + block - 1) / block;
  auto padded = torch::zeros({n_blocks * block}, flat.options().dtype(torch::kFloat32));
  padded.narrow(0, 0, n).copy_(flat);
  const auto blocks = padded.view({n_blocks, block});
  const auto scale = std::get<0>(blocks.abs().max(1));                      // [n_blocks]
  const auto safe = torch::where(scale > 0, scale, torch::ones_like(scale));  // 0 / 1 = 0: index of code 0
  const auto scaled = torch::clamp(blocks / safe.unsqueeze(1), -1.0, 1.0);
  const auto index = torch::bucketize(scaled.contiguous(), midpoints(code, n_code, flat.device()));
  return {index.reshape({-1}).narrow(0, 0, n).to(torch::kUInt8), scale};
}

// x W^T with W dequantised in forward and again in backward (nothing but the
// packed weights is kept).
class Nf4Matmul : public torch::autograd::Function<Nf4Matmul> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const Nf4Weight* w) {
    ctx->saved_data["w"] = reinterpret_cast<std::int64_t>(w);
    return torch::matmul(x, w->dequantize(x.scalar_type()).t());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto* w = reinterpret_cast<const Nf4Weight*>(ctx->saved_data["w"].toInt());
    const auto& g = grad[0];
    return {torch::matmul(g, w->dequantize(g.scalar_type())), torch::Tensor()};
  }
};

}  // namespace

const std::array<float, 16>& nf4_code() {
  static const std::array<float, 16> code = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
      -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
      0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f,
      1.0f};
  return code;
}

const std::array<float, 256>& dynamic_map_code() {
  // Signed, 7 exponent bits, 8 bits: for exponent i = 0..6, 2^i fraction values
  // (the midpoints of a float32 linspace(0.1, 1, 2^i + 1)) times 10^(i - 6),
  // with both signs; then 0 and 1. 127 + 127 + 2 = 256 values, sorted.
  static const std::array<float, 256> code = [] {
    std::vector<float> data;
    for (int i = 0; i < 7; ++i) {
      const int n = (1 << i) + 1;
      std::vector<float> bounds(static_cast<std::size_t>(n));
      const double step = (1.0 - 0.1) / (n - 1);
      for (int k = 0; k < n; ++k) {
        bounds[static_cast<std::size_t>(k)] =
            static_cast<float>(k < n / 2 ? 0.1 + step * k : 1.0 - step * (n - 1 - k));
      }
      const auto scale = static_cast<float>(std::pow(10.0, i - 6));
      for (int k = 0; k + 1 < n; ++k) {
        const float mean = (bounds[static_cast<std::size_t>(k)] + bounds[static_cast<std::size_t>(k) + 1]) / 2.0f;
        data.push_back(scale * mean);
        data.push_back(-(scale * mean));
      }
    }
    data.push_back(0.0f);
    data.push_back(1.0f);
    std::sort(data.begin(), data.end());
    std::array<float, 256> out{};
    std::copy(data.begin(), data.end(), out.begin());
    return out;
  }();
  return code;
}

std::int64_t Nf4Weight::numel() const {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

torch::Tensor Nf4Weight::block_absmax() const {
  if (!double_quant) return absmax;
  const auto values = absmax_table.index({absmax_q.to(torch::kLong)});
  const auto n = absmax_q.numel();
  const auto scale = absmax_scale.repeat_interleave(kDoubleQuantBlock).narrow(0, 0, n);
  return values * scale + absmax_offset;
}

torch::Tensor Nf4Weight::dequantize(c10::ScalarType dtype) const {
  const auto n = numel();
  const auto high = torch::bitwise_right_shift(packed, 4);
  const auto low = torch::bitwise_and(packed, 15);
  const auto index = torch::stack({high, low}, 1).reshape({-1}).narrow(0, 0, n).to(torch::kLong);
  const auto values = code.index({index});
  const auto scale = block_absmax().repeat_interleave(blocksize).narrow(0, 0, n);
  return (values * scale).to(dtype).view(shape);
}

std::size_t Nf4Weight::bytes() const {
  auto size = [](const torch::Tensor& t) { return t.defined() ? static_cast<std::size_t>(t.nbytes()) : 0u; };
  return size(packed) + size(absmax) + size(absmax_q) + size(absmax_scale) + (double_quant ? sizeof(float) : 0u);
}

Nf4Weight quantize_nf4(const torch::Tensor& w, std::int64_t blocksize, bool double_quant) {
  if (blocksize <= 0 || blocksize % 2 != 0) throw Error(fmt::format("NF4 blocksize must be even and positive, got {}", blocksize));
  torch::NoGradGuard no_grad;
  Nf4Weight out;
  out.shape = w.sizes().vec();
  out.blocksize = blocksize;
  const auto flat = w.detach().reshape({-1}).to(torch::kFloat32);
  const auto& code = nf4_code();
  auto [index, absmax] = quantize_blocks(flat, blocksize, code.data(), code.size());
  if (index.numel() % 2 != 0) index = torch::cat({index, torch::zeros({1}, index.options())});
  const auto pairs = index.view({-1, 2});
  out.packed = torch::bitwise_or(torch::bitwise_left_shift(pairs.select(1, 0), 4), pairs.select(1, 1)).contiguous();
  out.code = code_tensor(code.data(), code.size(), w.device());
  if (!double_quant) {
    out.absmax = absmax.contiguous();
    return out;
  }
  out.double_quant = true;
  out.absmax_offset = absmax.mean().item<float>();
  const auto& dyn = dynamic_map_code();
  auto [q, scale] = quantize_blocks(absmax - out.absmax_offset, kDoubleQuantBlock, dyn.data(), dyn.size());
  out.absmax_table = code_tensor(dyn.data(), dyn.size(), w.device());
  out.absmax_q = q.contiguous();
  out.absmax_scale = scale.contiguous();
  return out;
}

torch::Tensor nf4_linear(const torch::Tensor& x, const Nf4Weight& w) { return Nf4Matmul::apply(x, &w); }

}  // namespace sensecf::llm
