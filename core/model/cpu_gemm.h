// CPU GEMMs with fp32 output through oneDNN's matmul, for the products that dominate a LoRA step:
// the frozen base (fp32 or bf16 weights), the head and attention. Debian's OpenBLAS 0.3.21 runs
// its Haswell (AVX2) kernels on AVX-512 CPUs it does not know: 190 GFLOP/s on the 2-core EPYC,
// where oneDNN's AVX-512 kernels reach 320-390 in fp32 and 710-760 with bf16 operands (measured,
// square 1024-2048 and the Qwen2.5-0.5B layer shapes); on an AVX2-only Zen 3 oneDNN's fp32 kernels
// still beat it (a LoRA step 27% faster). Below AVX2, ATen's own GEMM is used.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include "model/gemm_info.h"

namespace hone {

// c [M, N] fp32 contiguous = alpha * a [M, K] x b [K, N] (+ c when accumulate), any plain
// strides. Either operand may be bf16: then both are rounded to bf16 and the products accumulate
// in fp32. Falls back to ATen (with the same rounding) where oneDNN does not apply.
void gemm_f32_out(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha = 1.0, bool accumulate = false);
at::Tensor gemm_f32(const at::Tensor& a, const at::Tensor& b, double alpha = 1.0);
// gemm_f32_out's path for bf16 operands on a CPU without a bf16 unit, whatever this one has (tests
// run it on every machine): both operands' bf16 values widened to fp32, a large weight a slice at
// a time, fp32 GEMMs.
void gemm_bf16_widened_out(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha = 1.0, bool accumulate = false);
// a [..., K] x b [K, N] -> [..., N] through gemm_f32 for fp32 CPU operands where oneDNN runs the
// fp32 GEMMs; at::matmul otherwise (CUDA, autocast's bf16, other CPUs).
at::Tensor matmul_f32(const at::Tensor& a, const at::Tensor& b);
// Whether gemm_f32 runs fp32 products of these CPU tensors on oneDNN (the LoRA branch's choice).
bool onednn_f32_applies(const at::Tensor& a, const at::Tensor& b);

// Batched, fp32: c [.., M, N] (rows of unit stride, e.g. a narrowed view) = alpha * a [.., M, K] x
// b [.., K, N] (+ c when accumulate), 3 or 4 dimensions, any plain strides; b's batch dimensions
// may be 1 and are then broadcast (grouped-query attention's shared key/value heads, no copies).
// The attention products. a and b may both be bf16 (products accumulated in fp32, c still fp32).
void matmul_f32_out(at::Tensor c, const at::Tensor& a, const at::Tensor& b, double alpha = 1.0, bool accumulate = false);
at::Tensor bmm_f32(const at::Tensor& a, const at::Tensor& b, double alpha = 1.0);  // into a new tensor

}  // namespace hone
