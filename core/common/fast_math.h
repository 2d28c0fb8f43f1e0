// Vectorizable float math for the fused CPU kernels. Debian's libtorch has no vectorized exp
// (SLEEF is off): at::silu ran at 7 ns per element and log_softmax at 3 ns on 2 threads, which made
// activations and the head's softmax most of a bf16-base step. These are straight-line float code,
// so that GCC vectorizes the loops that inline them (with target_clones for AVX2/AVX-512).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <cstring>

namespace hone {

// exp(x) for x <= 0: Cephes' single-precision polynomial on r = x - n ln2, |r| <= ln2 / 2, times
// 2^n built in the exponent bits; relative error about 1e-7. Below -87 (where exp leaves the
// normal floats) it returns exactly 0, as a masked score's exponential must be (a tiny value there
// would make denormals downstream, which run ~100x slower). Every branch is a select; the files
// using it compile with -ffinite-math-only -fno-signed-zeros -fno-trapping-math so that GCC may
// vectorize those (core/CMakeLists.txt).
inline float exp_nonpos(float x_in) {
  const float x = x_in > -87.0f ? x_in : -87.0f;
  const int n = static_cast<int>(x * 1.44269504088896341f - 0.5f);  // round(x / ln2) for x <= 0
  const float fn = static_cast<float>(n);
  const float r = (x - fn * 0.693359375f) - fn * -2.12194440e-4f;  // ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = ((n + 127) << 23) & -static_cast<int32_t>(x_in == x);  // 2^n, or +0 when clamped
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

// The logistic function 1 / (1 + exp(-x)) for any x, from exp(-|x|) so that nothing overflows.
inline float sigmoid_f(float x) {
  const float ax = x < 0 ? -x : x;
  const float e = exp_nonpos(-ax);
  const float inv = 1.0f / (1.0f + e);
  return inv + (x < 0 ? e * inv - inv : 0.0f);  // e / (1 + e) for x < 0
}

}  // namespace hone
