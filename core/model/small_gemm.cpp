// Few-row linear layers for decoding (see small_gemm.h): each thread takes a band of W's rows and
// streams it once, multiplying every row of W with all M inputs while it is in registers.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/small_gemm.h"

#include "common/parallel.h"

#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace hone {

namespace {

// ---- AVX-512 ------------------------------------------------------------------------------------
// W's rows in memory order with a software prefetch 4 KB ahead. Which kind of prefetch depends on
// the vendor. On the 2-core AMD EPYC / Zen 4 VMs, over the 544 MB tied head with one input, 4 rows
// at a time without a prefetch ran at 33 GB/s and one row with a non-temporal one (NTA, which does
// not displace the inputs from the cache) at 50. On a 2-core Ice Lake Xeon the NTA prefetch halves
// the rate instead (Intel's NTA fills skip the L2, likely keeping its hardware streamer out): a decode
// step's weights (24 layers and the head, Qwen2.5-0.5B shape) streamed at 10.3 GB/s f32 and 14.6
// bf16 with it, 23.9 and 23.0 with a T0 prefetch, 21.3 and 20.4 with none (2 threads; the memory's
// own rate there is about 20-22 GB/s by a plain sum).
#define HONE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

template <bool BF16>
HONE_AVX512 inline __m512 load_w(const void* w, int64_t i) {
  if constexpr (BF16) {
    // bf16 -> fp32 is exact: the 16 bits become the high half of the fp32 word.
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_loadu_ps(static_cast<const float*>(w) + i);
  }
}

template <bool BF16>
HONE_AVX512 inline __m512 load_w_tail(const void* w, int64_t i, __mmask16 m) {
  if constexpr (BF16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
  }
}

template <bool BF16, bool NTA>
HONE_AVX512 inline void prefetch_w(const void* w, int64_t i) {
  constexpr int64_t ahead = BF16 ? 2048 : 1024;  // elements: 4 KB
  const char* p = static_cast<const char*>(w) + (i + ahead) * (BF16 ? 2 : 4);
  // Past the end of W a prefetch is a no-op, not a fault.
  if constexpr (NTA) _mm_prefetch(p, _MM_HINT_NTA);
  else _mm_prefetch(p, _MM_HINT_T0);
}

// R rows of W against M inputs with S accumulator sets: a single input (M = 1) takes one row and
// two sets, so that one chain of dependent FMAs does not bound the rate; several take two rows per
// input load, halving the reads of the inputs, which outgrow L1 (8 x 4,864 floats: 155 KB) and
// made the 8-row kernel twice as slow as the 1-row one per step.
template <int M, int R, int S, bool BF16, bool NTA>
HONE_AVX512 void rows_avx512(const float* x, int64_t K, const void* w, int64_t n0, int64_t n1, float* y, int64_t N,
                             const float* bias) {
  const int64_t kv = K / (16 * S) * (16 * S);
  int64_t n = n0;
  for (; n + R <= n1; n += R) {
    __m512 acc[R][S][M];
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s)
        for (int m = 0; m < M; ++m) acc[r][s][m] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kv; k += 16 * S) {
      for (int s = 0; s < S; ++s) {
        __m512 wv[R];
        for (int r = 0; r < R; ++r) {
          prefetch_w<BF16, NTA>(w, (n + r) * K + k + 16 * s);
          wv[r] = load_w<BF16>(w, (n + r) * K + k + 16 * s);
        }
        for (int m = 0; m < M; ++m) {
          __m512 xv = _mm512_loadu_ps(x + m * K + k + 16 * s);
          // One load of x for the R rows: GCC otherwise folds a load into each FMA, and the loads,
          // not the FMAs, bound the kernel (8 rows over the 544 MB head: 25 ms with, 16 without).
          if constexpr (R > 1) asm("" : "+v"(xv));
          for (int r = 0; r < R; ++r) acc[r][s][m] = _mm512_fmadd_ps(wv[r], xv, acc[r][s][m]);
        }
      }
    }
    for (int64_t k = kv; k < K; k += 16) {  // what is left: whole steps, then a masked one
      const __mmask16 mk = K - k >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (K - k)) - 1);
      __m512 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = load_w_tail<BF16>(w, (n + r) * K + k, mk);
      for (int m = 0; m < M; ++m) {
        const __m512 xv = _mm512_maskz_loadu_ps(mk, x + m * K + k);
        for (int r = 0; r < R; ++r) acc[r][0][m] = _mm512_fmadd_ps(wv[r], xv, acc[r][0][m]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < M; ++m) {
        __m512 t = acc[r][0][m];
        for (int s = 1; s < S; ++s) t = _mm512_add_ps(t, acc[r][s][m]);
        y[m * N + n + r] = _mm512_reduce_add_ps(t) + (bias ? bias[n + r] : 0.f);
      }
  }
  if constexpr (R > 1) {
    if (n < n1) rows_avx512<M, 1, S, BF16, NTA>(x, K, w, n, n1, y, N, bias);
  }
}

template <int M, bool BF16, bool NTA>
void band_avx512(const float* x, int64_t K, const void* w, int64_t n0, int64_t n1, float* y, int64_t N, const float* bias) {
  if constexpr (M == 1) rows_avx512<1, 1, 2, BF16, NTA>(x, K, w, n0, n1, y, N, bias);
  else rows_avx512<M, 2, 1, BF16, NTA>(x, K, w, n0, n1, y, N, bias);
}

using BandFn = void (*)(const float*, int64_t, const void*, int64_t, int64_t, float*, int64_t, const float*);

template <bool BF16, bool NTA>
BandFn avx512_for(int64_t m) {
  switch (m) {
    case 1: return band_avx512<1, BF16, NTA>;
    case 2: return band_avx512<2, BF16, NTA>;
    case 3: return band_avx512<3, BF16, NTA>;
    case 4: return band_avx512<4, BF16, NTA>;
    case 5: return band_avx512<5, BF16, NTA>;
    case 6: return band_avx512<6, BF16, NTA>;
    case 7: return band_avx512<7, BF16, NTA>;
    default: return band_avx512<8, BF16, NTA>;
  }
}

BandFn avx512_band(bool bf16, bool nta, int64_t m) {
  if (bf16) return nta ? avx512_for<true, true>(m) : avx512_for<true, false>(m);
  return nta ? avx512_for<false, true>(m) : avx512_for<false, false>(m);
}

// NTA prefetches where they were measured faster (AMD), T0 elsewhere (Intel: see above).
// HONE_DECODE_PREFETCH=nta|t0 picks one, for measuring on a new CPU.
bool nta_prefetch() {
  static const bool nta = [] {
    const char* env = std::getenv("HONE_DECODE_PREFETCH");
    if (env && std::strcmp(env, "nta") == 0) return true;
    if (env && std::strcmp(env, "t0") == 0) return false;
    return static_cast<bool>(__builtin_cpu_is("amd"));
  }();
  return nta;
}

// ---- Any other x86-64 CPU ------------------------------------------------------------------------
// Sixteen partial sums per row so that GCC vectorizes the dot product without reordering a single
// sum (AVX2 where the CPU has it); W's row is read from memory once and from L1 for the other inputs.
__attribute__((target_clones("avx2", "default")))
void band_generic(const float* x, int64_t M, int64_t K, const float* w32, const uint16_t* w16, int64_t n0, int64_t n1,
                  float* y, int64_t N, const float* bias) {
  constexpr int W = 16;
  const int64_t kv = K / W * W;
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      float acc[W] = {};
      float rest = 0.f;
      if (w16) {
        const uint16_t* wr = w16 + n * K;
        for (int64_t k = 0; k < kv; k += W)
          for (int j = 0; j < W; ++j) {
            const uint32_t bits = static_cast<uint32_t>(wr[k + j]) << 16;
            float wf;
            std::memcpy(&wf, &bits, 4);
            acc[j] += wf * xm[k + j];
          }
        for (int64_t k = kv; k < K; ++k) {
          const uint32_t bits = static_cast<uint32_t>(wr[k]) << 16;
          float wf;
          std::memcpy(&wf, &bits, 4);
          rest += wf * xm[k];
        }
      } else {
        const float* wr = w32 + n * K;
        for (int64_t k = 0; k < kv; k += W)
          for (int j = 0; j < W; ++j) acc[j] += wr[k + j] * xm[k + j];
        for (int64_t k = kv; k < K; ++k) rest += wr[k] * xm[k];
      }
      float s = rest;
      for (int j = 0; j < W; ++j) s += acc[j];
      y[m * N + n] = s + (bias ? bias[n] : 0.f);
    }
  }
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  return yes;
}

}  // namespace

bool small_rows_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (!x.defined() || !w.defined() || !x.device().is_cpu() || !w.device().is_cpu()) return false;
  if (x.scalar_type() != at::kFloat || w.dim() != 2 || !w.is_contiguous()) return false;
  if (w.scalar_type() != at::kFloat && w.scalar_type() != at::kBFloat16) return false;
  if (at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (bias.defined() && bias.requires_grad())))
    return false;
  if (bias.defined() && !bias.device().is_cpu()) return false;
  const int64_t K = w.size(1);
  if (K == 0 || x.dim() == 0 || x.size(-1) != K) return false;
  const int64_t M = x.numel() / K;
  return M >= 1 && M <= kSmallRows;
}

at::Tensor small_rows_linear(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& bias_in) {
  at::NoGradGuard ng;
  const int64_t N = w.size(0), K = w.size(1);
  const bool bf16 = w.scalar_type() == at::kBFloat16;
  // The inputs the GEMM path would multiply: rounded to bf16 against a bf16 weight.
  at::Tensor x = bf16 ? x_in.reshape({-1, K}).to(at::kBFloat16).to(at::kFloat) : x_in.reshape({-1, K}).contiguous();
  const int64_t M = x.size(0);
  at::Tensor bias;
  if (bias_in.defined() && bias_in.numel() > 0) bias = bias_in.to(at::kFloat).contiguous();
  at::Tensor y = at::empty({M, N}, x.options());  // [M, N]
  const float* xp = x.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const void* wp = w.data_ptr();
  // Bands of at least 64 KB of weights per task, so that the threads' start-up stays small.
  const int64_t grain = std::max<int64_t>(4, (int64_t{64} << 10) / (K * w.element_size()));
  if (has_avx512()) {
    const BandFn f = avx512_band(bf16, nta_prefetch(), M);
    parallel_for(0, N, grain, [&](int64_t lo, int64_t hi) { f(xp, K, wp, lo, hi, yp, N, bp); });
  } else {
    const float* w32 = bf16 ? nullptr : static_cast<const float*>(wp);
    const uint16_t* w16 = bf16 ? static_cast<const uint16_t*>(wp) : nullptr;
    parallel_for(0, N, grain, [&](int64_t lo, int64_t hi) { band_generic(xp, M, K, w32, w16, lo, hi, yp, N, bp); });
  }
  auto sizes = x_in.sizes().vec();
  sizes.back() = N;
  return y.view(sizes);
}

}  // namespace hone
