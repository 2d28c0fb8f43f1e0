// Fused fp32 CPU kernels for the training step's memory-bound pieces: RMSNorm, rotary embedding
// and next-token cross entropy, each an autograd function with a hand-written backward. The
// ATen compositions they replace make 5-10 passes over their tensor each way; these make 1-3.
// Callers fall back to the ATen ops for other dtypes and devices (fused_cpu_applies).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <tuple>

namespace hone {

// True for fp32 tensors on the CPU.
bool fused_cpu_applies(const at::Tensor& x);

// w * x / sqrt(mean(x^2, -1) + eps); x [..., H] fp32, w [H] fp32.
at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

// Rotate-half RoPE: x * cos + rotate_half(x) * sin. x [B, H, T, D] of any strides (a transposed
// view of the projection is fine), cos/sin [B, T, D] (or broadcastable); returns a contiguous
// [B, H, T, D], so the attention GEMMs that follow need no copy.
at::Tensor fused_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// Sum over rows whose label is not ignore_index of -log softmax(logits)[label]; logits [N, V]
// fp32, labels [N] int64. The gradient (softmax minus one-hot) is computed in the forward pass,
// in one pass over the logits after the softmax, and kept instead of the log-probabilities.
at::Tensor fused_cross_entropy_sum(const at::Tensor& logits, const at::Tensor& labels, int64_t ignore_index = -100);

// SwiGLU's product a = silu(g) * u and its gradients dg = d * u * s * (1 + g * (1 - s)) (s the
// logistic of g) and du = d * silu(g), one pass each way; g, u, d contiguous fp32 of one shape.
// Not autograd functions: the decoder's gated-activation node calls them.
// g and u may also both be bf16 (the roundings fused_swiglu_keep_bf16 kept); a, dg, du are fp32.
at::Tensor fused_swiglu(const at::Tensor& g, const at::Tensor& u);
std::pair<at::Tensor, at::Tensor> fused_swiglu_backward(const at::Tensor& d, const at::Tensor& g, const at::Tensor& u);
// True when g and u suit the two above: contiguous CPU tensors of one shape, both fp32 or both bf16.
bool swiglu_operands(const at::Tensor& g, const at::Tensor& u);

// a = silu(g) * u from fp32 g and u (exactly fused_swiglu's), and g and u rounded to bf16 in the
// same pass: what backward keeps over a bf16 base, half the bytes of the fp32 pair.
std::tuple<at::Tensor, at::Tensor, at::Tensor> fused_swiglu_keep_bf16(const at::Tensor& g, const at::Tensor& u);

// The softmax's backward in place: d <- p * (d - rowsum(p * d)) over the last dimension, for
// contiguous fp32 CPU tensors of one shape (the attention's dS from dP and P; one pass per row
// where the ATen composition made four and two temporaries).
void fused_softmax_backward_lastdim_(at::Tensor& d, const at::Tensor& p);

// x[0..n) rounded to bf16 into y (to nearest, ties to even), AVX-512 where the CPU has it.
void round_to_bf16_span(const float* x, uint16_t* y, int64_t n);

// x rounded to bf16 (to nearest, ties to even; NaN stays NaN, as c10::BFloat16 rounds), for a
// contiguous fp32 CPU tensor: the operand of every bf16 GEMM. ATen 1.13's conversion took 1.0 ms
// for a [512, 896] activation (2.3 ns per element, 12x its own rate at [512, 4864]; measured).
at::Tensor fused_to_bf16(const at::Tensor& x);
// x widened to fp32, for a contiguous bf16 CPU tensor (ATen 1.13's conversion: 2.3 ns an element).
at::Tensor fused_from_bf16(const at::Tensor& x);

// Softmax over the last dimension, in place, of a contiguous fp32 CPU tensor (the attention's
// scores): one pass for the maximum, one for the exponentials and their sum, one to scale.
void fused_softmax_lastdim_(at::Tensor& s);

}  // namespace hone
