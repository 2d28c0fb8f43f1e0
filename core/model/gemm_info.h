// Which GEMMs this machine runs (oneDNN or ATen/BLAS, fp32 and bf16) and how fast, without
// torch headers, for the desktop pages (Qt's `slots` macro breaks them). See model/cpu_gemm.h.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>

namespace hone {

// True where oneDNN's fp32 matmul runs the frozen base, head and attention products: a build with
// oneDNN, a CPU with AVX2 or AVX-512, and HONE_GEMM not set to "aten" (which keeps ATen/BLAS, to compare).
bool onednn_f32_gemm();
// True where bf16 operands run natively (AVX512-BF16 or AMX) through oneDNN.
bool onednn_bf16_gemm();
// True where, without that unit, bf16 operands widened to fp32 (AVX-512 kernels) feed oneDNN's
// AVX-512 fp32 GEMMs: a bf16 base then runs at the fp32 base's speed (measured on an Ice Lake
// Xeon, docs/performance.md, session 34), so base_dtype auto may store it in bf16 there too.
bool bf16_widened_at_f32_speed();
// What the two found, for logs, `inspect --system` and bench: "oneDNN avx512_core_bf16: fp32
// oneDNN, bf16 oneDNN", "... fp32 ATen/BLAS (HONE_GEMM=aten) ...", ...
std::string cpu_gemm_describe();

// This machine's fp32 GEMM rate as Hone runs it (GFLOP/s, square n x n, best of a few rounds).
double measure_f32_gemm_gflops(int64_t n = 1024, int reps = 4);
// The same with bf16 operands (fp32 accumulation and output), for bench's bf16 MFU.
double measure_bf16_gemm_gflops(int64_t n = 1024, int reps = 4);

}  // namespace hone
