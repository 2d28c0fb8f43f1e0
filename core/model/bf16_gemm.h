// Frozen base weights (LoRA, QLoRA) in fp32 or bf16 (base_dtype "bf16"): the linear layer over
// them and the policy choosing their storage. With a bf16 weight the activation is rounded to
// bf16 and the GEMM accumulates and writes fp32 (oneDNN on CPUs with AVX512-BF16 or AMX, 2x
// oneDNN's fp32 rate and 4x OpenBLAS's, measured on the 2-core EPYC), so only the operands are
// rounded, never the products or the output. Without that unit the operands are widened to fp32
// per call (AVX-512 kernels, oneDNN's fp32 GEMMs): same memory saving, the fp32 base's speed.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace hone {

// y = x W^T + bias for x [..., K] fp32 (CPU) and a frozen W [N, K] in bf16, or in fp32 where
// oneDNN runs the fp32 GEMMs (model/cpu_gemm.h); differentiable in x only, and it keeps nothing for
// backward but W (dx = dy W, with dy rounded to bf16 for a bf16 W; fp32 output either way).
at::Tensor frozen_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);
// Whether frozen_linear is the faster way to apply w to x here (else at::linear).
bool frozen_linear_applies(const at::Tensor& x, const at::Tensor& w);

// run config "base_dtype" -> whether the frozen base is stored in bf16, and why (for the log).
// auto: bf16 on a CPU with the fast path (or, for LoRA, with bf16_widened_at_f32_speed) once the
// fp32 base passes 256 MB; below that memory is rarely the limit and fp32 keeps runs
// bit-comparable with earlier ones. Never for full training (nothing is frozen) or on CUDA
// (autocast already runs the GEMMs in bf16).
struct BaseDtypeChoice {
  bool bf16 = false;
  std::string why;
};
BaseDtypeChoice resolve_base_dtype(const std::string& requested, const std::string& method, bool cuda, int64_t base_fp32_bytes);

}  // namespace hone
