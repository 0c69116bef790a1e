// NF4: the 4-bit NormalFloat weights of QLoRA, as bitsandbytes stores them, so
// that an 8B model's frozen base weights take ~4.1 bits per parameter while
// LoRA trains in full precision on top.
//
//   code       the 16 NF4 values (bitsandbytes' table, index 0..15: -1 .. 1,
//              with an exact 0 at index 7)
//   quantise   per block of `blocksize` (64) consecutive weights of the
//              flattened matrix: absmax = max |w| (fp32); each weight becomes
//              the index of the code value nearest to w / absmax (ties to the
//              lower index); two indices per byte, the first in the high nibble
//   double     (optional) the fp32 absmax are themselves quantised: minus
//   quant      their mean (offset), then 8 bits per value against
//              bitsandbytes' signed dynamic map, with an fp32 scale per 256
//   dequantise code[index] * absmax[block], in the compute dtype
//
// nf4_linear(x, w) = x W^T with W dequantised on the fly, under autograd: the
// backward recomputes W from the packed bytes instead of keeping it, so
// training holds only the 4-bit weights (a plain dequantise-then-matmul would
// keep every dequantised matrix alive until backward). The packed weights
// never require grad. This is the reference path on any device; a fused CUDA
// kernel can replace it without changing the format.
//
// Only light ATen headers here; nf4.cpp includes <torch/torch.h>.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <array>
#include <cstdint>
#include <vector>

namespace sensecf::llm {

// bitsandbytes' NF4 table (_NF4_QUANT_TABLE).
const std::array<float, 16>& nf4_code();
// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7,
// total_bits=8): the 256 sorted values double quantisation uses.
const std::array<float, 256>& dynamic_map_code();

struct Nf4Weight {
  at::Tensor packed;                // uint8 [ceil(numel / 2)]
  at::Tensor absmax;                // fp32 [n_blocks]; undefined when double_quant
  bool double_quant = false;
  at::Tensor absmax_q;              // uint8 [n_blocks]: index into dynamic_map_code()
  at::Tensor absmax_scale;          // fp32 [ceil(n_blocks / 256)]
  float absmax_offset = 0;          // mean of the fp32 absmax
  std::vector<std::int64_t> shape;  // of the original weight
  std::int64_t blocksize = 64;
  // The tables as fp32 tensors on the packed bytes' device, made once at
  // quantisation: dequantize() runs at every forward and backward and must not
  // copy them to the device each time. Constants, not counted by bytes().
  at::Tensor code;          // nf4_code()
  at::Tensor absmax_table;  // dynamic_map_code(); double_quant only

  std::int64_t numel() const;
  // The block scales as fp32 [n_blocks] (double quantisation undone).
  at::Tensor block_absmax() const;
  // The weight in `dtype`, shape `shape`, on the packed bytes' device.
  at::Tensor dequantize(c10::ScalarType dtype) const;
  // Bytes held: packed weights and block statistics (not the shared tables).
  std::size_t bytes() const;
};

// Quantises w (any float dtype, any device; computed in fp32 there).
Nf4Weight quantize_nf4(const at::Tensor& w, std::int64_t blocksize = 64, bool double_quant = false);

// x [..., in] -> [..., out] = x W^T, W dequantised in x's dtype (see above).
at::Tensor nf4_linear(const at::Tensor& x, const Nf4Weight& w);

}  // namespace sensecf::llm
