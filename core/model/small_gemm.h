// Linear layers over a few rows (decoding: one token per sequence, up to kSmallRows sequences at
// once): y [M, N] = x [M, K] W^T + bias with W [N, K] fp32 or bf16, read once for all M rows.
// Decoding is bound by reading the weights; oneDNN's and OpenBLAS's GEMMs reached about 30 GB/s
// for M = 1 on the 2-core Zen 4, where a plain row-by-row dot product streams at the memory's rate.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

namespace hone {

constexpr int64_t kSmallRows = 8;

// Whether small_rows_linear applies: CPU, x fp32 with at most kSmallRows rows, W fp32 or bf16
// contiguous [N, K], and no gradient wanted of x, W or the bias (inference: generation, evaluation, rollouts).
bool small_rows_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

// x [..., K] -> [..., N]. With a bf16 W, x is rounded to bf16 first, as the frozen layer's GEMM
// does (model/bf16_gemm.h), so that both give the same products; sums are fp32 either way.
at::Tensor small_rows_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);

}  // namespace hone
