// Seeded dropout: a counter-based mask (two rounds of MurmurHash3's 32-bit finalizer over the
// element's index and the seed), made again wherever it is needed instead of being stored. The
// hash runs 8 lanes at a time on AVX2 CPUs (the same bits as the scalar loop, which is the rest).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/seeded_dropout.h"

#include "common/parallel.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <immintrin.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "common/error.h"

namespace hone {

namespace {

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// The first index's hash mixes the seed's low word; a second round mixes its high word and the
// index's high bits, so that seeds differing only in their high half give unrelated masks.
inline uint32_t element_hash(uint64_t seed, uint64_t i) {
  const uint32_t h = fmix32(static_cast<uint32_t>(i) * 0x9e3779b1u + static_cast<uint32_t>(seed));
  return fmix32(h ^ static_cast<uint32_t>(seed >> 32) ^ (static_cast<uint32_t>(i >> 32) * 0x7feb352du));
}

// d[j] for j in [0, n) is element first + j: with kMask, 1 where kept and 0 where dropped;
// otherwise d[j] * scale where kept and 0 where dropped.
template <bool kMask>
void scalar_range(float* d, int64_t n, uint64_t first, uint64_t seed, uint32_t t, float scale) {
  for (int64_t j = 0; j < n; ++j) {
    const bool keep = element_hash(seed, first + static_cast<uint64_t>(j)) >= t;
    d[j] = keep ? (kMask ? 1.0f : d[j] * scale) : 0.0f;
  }
}

__attribute__((target("avx2"))) inline __m256i fmix32x8(__m256i h) {
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int>(0x85ebca6bu)));
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int>(0xc2b2ae35u)));
  return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

// scalar_range's result, 8 elements a step: indices within one 2^32 block share their high word,
// so each lane needs only its low word; the unsigned h >= t is a signed compare with both sign
// bits flipped (AVX2 has no unsigned one).
template <bool kMask>
__attribute__((target("avx2"))) void avx2_range(float* d, int64_t n, uint64_t first, uint64_t seed, uint32_t t, float scale) {
  const __m256i vseed = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(seed)));
  const __m256i golden = _mm256_set1_epi32(static_cast<int>(0x9e3779b1u)), lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i tflip = _mm256_set1_epi32(static_cast<int>(t ^ 0x80000000u));
  const __m256 vscale = _mm256_set1_ps(scale), one = _mm256_set1_ps(1.0f);
  int64_t j = 0;
  while (j < n) {
    const uint64_t i = first + static_cast<uint64_t>(j);
    // Elements up to the next multiple of 2^32 share the index's high word.
    const uint64_t left = (((i >> 32) + 1) << 32) - i;  // modulo 2^64: right in the last block too
    const int64_t end = left >= static_cast<uint64_t>(n - j) ? n : j + static_cast<int64_t>(left);
    const uint32_t high = static_cast<uint32_t>(seed >> 32) ^ (static_cast<uint32_t>(i >> 32) * 0x7feb352du);
    const __m256i vhigh = _mm256_set1_epi32(static_cast<int>(high));
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(i))), lanes);
    for (; j + 8 <= end; j += 8) {
      __m256i h = fmix32x8(_mm256_add_epi32(_mm256_mullo_epi32(idx, golden), vseed));
      h = fmix32x8(_mm256_xor_si256(h, vhigh));
      const __m256 drop = _mm256_castsi256_ps(_mm256_cmpgt_epi32(tflip, _mm256_xor_si256(h, sign)));  // t > h
      const __m256 v = kMask ? one : _mm256_mul_ps(_mm256_loadu_ps(d + j), vscale);
      _mm256_storeu_ps(d + j, _mm256_andnot_ps(drop, v));
      idx = _mm256_add_epi32(idx, _mm256_set1_epi32(8));
    }
    scalar_range<kMask>(d + j, end - j, first + static_cast<uint64_t>(j), seed, t, scale);
    j = end;
  }
}

// Initialised before main: __builtin_cpu_supports is only reliable there after __builtin_cpu_init.
const bool kHaveAvx2 = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));

template <bool kMask>
void apply(float* d, int64_t n, uint64_t first, uint64_t seed, uint32_t t, float scale) {
  parallel_for(0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
    if (kHaveAvx2) avx2_range<kMask>(d + lo, hi - lo, first + static_cast<uint64_t>(lo), seed, t, scale);
    else scalar_range<kMask>(d + lo, hi - lo, first + static_cast<uint64_t>(lo), seed, t, scale);
  });
}

uint32_t threshold(double p) {
  if (!(p >= 0.0 && p < 1.0)) throw Error("dropout probability must be in [0, 1), got " + std::to_string(p));
  return static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
}

}  // namespace

at::Generator dropout_generator(const at::Tensor& x) {
  if (x.is_cuda()) return at::globalContext().defaultGenerator(x.device());
  return at::detail::getDefaultCPUGenerator();
}

uint64_t draw_dropout_seed(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu(), "draw_dropout_seed: the seeded masks are made on the CPU");
  auto gen = dropout_generator(x);
  std::lock_guard<std::mutex> lk(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

bool seeded_dropout_applies(const at::Tensor& x) { return x.device().is_cpu() && x.scalar_type() == at::kFloat; }

void seeded_dropout_(at::Tensor& x, uint64_t seed, double p) {
  TORCH_CHECK(seeded_dropout_applies(x) && x.is_contiguous(), "seeded_dropout_: a contiguous fp32 CPU tensor expected");
  if (p == 0) return;
  apply<false>(x.data_ptr<float>(), x.numel(), 0, seed, threshold(p), static_cast<float>(1.0 / (1.0 - p)));
}

at::Tensor seeded_dropout(const at::Tensor& x, uint64_t seed, double p) {
  TORCH_CHECK(seeded_dropout_applies(x), "seeded_dropout: an fp32 CPU tensor expected");
  at::Tensor out = x.contiguous().clone();
  seeded_dropout_(out, seed, p);
  return out;
}

at::Tensor seeded_dropout_mask(int64_t numel, uint64_t seed, double p, uint64_t first) {
  const uint32_t t = threshold(p);
  at::Tensor m = at::empty({numel}, at::kFloat);
  apply<true>(m.data_ptr<float>(), numel, first, seed, t, 1.0f);
  return m;
}

bool seeded_dropout_keeps(uint64_t seed, uint64_t i, double p) { return element_hash(seed, i) >= threshold(p); }

}  // namespace hone
