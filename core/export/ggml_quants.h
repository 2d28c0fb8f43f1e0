// The block encodings of ggml's quantized tensor types that Hone writes and reads (hf-compat.md
// §8): Q8_0, Q5_0 and Q5_1 (blocks of 32) and the K-quants Q4_K, Q5_K and Q6_K (super-blocks of
// 256 with packed sub-block scales), as ggml lays their bytes out. Encoding searches each block for
// the scale (and offset) that minimise the weighted squared error, not the plain min/max rule, with
// an optional importance per element (the export's calibration, llama.cpp's imatrix idea).
// No torch; the byte layer of GGUF (gguf.h) dispatches here.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>

namespace hone {

// fp32 <-> fp16 / bf16 bit patterns, round to nearest even.
uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);
float bf16_to_fp32(uint16_t h);

// Elements and bytes of one block.
constexpr uint64_t kQK = 32, kQKK = 256;
constexpr uint64_t kQ8_0Bytes = 34, kQ5_0Bytes = 22, kQ5_1Bytes = 24;
constexpr uint64_t kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;

// Each quantizer encodes `n` values (a whole number of blocks) into `out`. `w` (may be null: equal
// weights) gives each value's importance; the search minimises sum w * (x - decoded)^2 per block.
void quantize_q8_0(const float* x, uint64_t n, uint8_t* out);
void quantize_q5_0(const float* x, const float* w, uint64_t n, uint8_t* out);
void quantize_q5_1(const float* x, const float* w, uint64_t n, uint8_t* out);
void quantize_q4_k(const float* x, const float* w, uint64_t n, uint8_t* out);
void quantize_q5_k(const float* x, const float* w, uint64_t n, uint8_t* out);
void quantize_q6_k(const float* x, const float* w, uint64_t n, uint8_t* out);

void dequantize_q8_0(const uint8_t* in, uint64_t n, float* y);
void dequantize_q5_0(const uint8_t* in, uint64_t n, float* y);
void dequantize_q5_1(const uint8_t* in, uint64_t n, float* y);
void dequantize_q4_k(const uint8_t* in, uint64_t n, float* y);
void dequantize_q5_k(const uint8_t* in, uint64_t n, float* y);
void dequantize_q6_k(const uint8_t* in, uint64_t n, float* y);

}  // namespace hone
