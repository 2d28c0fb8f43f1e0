// NF4 storage for frozen weights (QLoRA): 4-bit NormalFloat codes in blocks of 64 with a
// double-quantized per-block absmax (hf-compat.md §5), and block-wise dequantization.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace hone {

constexpr int64_t kNF4Block = 64;
constexpr int64_t kNF4AbsmaxBlock = 256;
extern const float kNF4Codebook[16];

struct NF4Weight {
  at::Tensor codes;         // uint8 [ceil(numel/64)*32]: two codes a byte, first element in the high nibble
  at::Tensor absmax_q;      // int8 [n_blocks]: (absmax - offset) / scale, rounded
  at::Tensor absmax_scale;  // fp32 [ceil(n_blocks/256)]
  double absmax_offset = 0;  // mean of the absmax values
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t bytes() const;  // storage actually held
};

NF4Weight nf4_quantize(const at::Tensor& w);
at::Tensor nf4_dequantize(const NF4Weight& q, at::ScalarType dtype = at::kFloat);
// Same, from the raw tensors (used inside the autograd function).
at::Tensor nf4_dequantize(const at::Tensor& codes, const at::Tensor& absmax_q, const at::Tensor& absmax_scale,
                          double offset, at::IntArrayRef shape, at::ScalarType dtype);
// Indices (0..15) of the nearest codebook value for values already divided by their absmax.
at::Tensor nf4_nearest_code(const at::Tensor& normalized);

struct QuantError {
  double relative_frobenius = 0;  // ||W - Q(W)|| / ||W||
  double max_abs = 0;
};
QuantError nf4_error(const at::Tensor& w, const NF4Weight& q);

// y = x W^T with W held as NF4; backward dequantizes again instead of saving W.
at::Tensor nf4_linear(const at::Tensor& x, const NF4Weight& q, const at::Tensor& bias);

}  // namespace hone
