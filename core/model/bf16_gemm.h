// Products of fp32 activations with bf16-stored frozen weights (base_dtype "bf16"): the activation
// is rounded to bf16, the GEMM accumulates and writes fp32 (oneDNN's matmul on CPUs with
// AVX512-BF16 or AMX, 4x the fp32 rate measured on the 2-core EPYC), so only the operands are
// rounded, never the products or the output. Without that path the weight is widened to fp32
// per call: same memory saving, fp32 speed.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace hone {

// True where this build has oneDNN and the CPU runs bf16 GEMMs natively (AVX512-BF16 or AMX).
bool bf16_gemm_fast();
// What bf16_gemm_fast() found, for logs and `inspect --system`: "oneDNN avx512_core_bf16", ...
std::string bf16_gemm_describe();

// a [M, K] (fp32, or bf16), b [K, N] bf16 with any strides (a transposed weight is fine)
// -> [M, N] fp32. On CUDA: a bf16 GEMM (cuBLAS accumulates in fp32), widened.
at::Tensor mm_bf16_f32(const at::Tensor& a, const at::Tensor& b);
// The same into c [M, N] (fp32, contiguous), so that a caller can reuse one buffer.
void mm_bf16_f32_out(at::Tensor& c, const at::Tensor& a, const at::Tensor& b);

// y = x W^T + bias for x [..., K] fp32 and a frozen bf16 W [N, K]; differentiable in x only, and it
// keeps nothing for backward but W (dx = dy W with dy rounded to bf16, fp32 output).
at::Tensor frozen_bf16_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);

// run config "base_dtype" -> whether the frozen base is stored in bf16, and why (for the log).
// auto: bf16 on a CPU with the fast path once the fp32 base passes 256 MB; below that memory is
// rarely the limit and fp32 keeps runs bit-comparable with earlier ones. Never for full training
// (nothing is frozen) or on CUDA (autocast already runs the GEMMs in bf16).
struct BaseDtypeChoice {
  bool bf16 = false;
  std::string why;
};
BaseDtypeChoice resolve_base_dtype(const std::string& requested, const std::string& method, bool cuda, int64_t base_fp32_bytes);

// This machine's bf16 GEMM rate (GFLOP/s, square n x n, `reps` timed runs), for bench's MFU.
double measure_bf16_gemm_gflops(int64_t n = 1024, int reps = 4);

}  // namespace hone
