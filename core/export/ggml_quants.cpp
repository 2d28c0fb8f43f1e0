// ggml's quantized block types (see ggml_quants.h). The byte layouts follow ggml's block structs
// (ggml-common.h); the encoders are Hone's own: each block's scale (and offset) is chosen by a
// small search that minimises the weighted squared error, then the K-quants' sub-block scales are
// coded in 6 or 8 bits and every value is rounded again against the scale it will be decoded with.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/ggml_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace hone {

// fp32 <-> fp16 / bf16 bit patterns, round to nearest even (as numpy and ggml do).
uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x7fffffu;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));  // inf / nan
  int32_t e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {                                                  // subnormal or zero
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;  // may carry into the exponent: correct
  return static_cast<uint16_t>(sign | half);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400u));
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t fp32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet nan
  x += 0x7fffu + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

float bf16_to_fp32(uint16_t h) {
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

namespace {

// The search tries iscale = (nmax + kStep * k) / range for k in [kLo, kHi]: below nmax leaves the
// extremes unclipped with coarser steps, above clips the extremes for finer steps elsewhere.
constexpr int kLo = -9, kHi = 12;
constexpr float kStep = 0.1f;

// Round to the nearest integer; values beyond int's range (a near-zero range's huge step, NaN or
// infinite weights) are held inside it, so that the conversion is defined: they clamp to the
// type's extreme level anyway.
// Adding 1.5 x 2^23 leaves the rounded integer (ties to even, as nearbyint) in the low mantissa
// bits: no libm call in the inner loops of the search (a 3x faster export at the 0.5B shape).
inline int nearest(float v) {
  if (!(v == v)) return 0;
  const float t = std::clamp(v, -4.0e6f, 4.0e6f) + 12582912.f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}
inline float weight_at(const float* w, int i) { return w ? w[i] : 1.f; }

void put_f16(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}
float get_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// x ~= scale * L + offset with L in [0, nmax]: the asymmetric sub-blocks (Q4_K, Q5_K, Q5_1). With
// `offset_nonpositive` (the K-quants store the offset as a non-negative "min" that is subtracted)
// the offset is held <= 0. Returns {scale, offset} minimising sum w (x - scale L - offset)^2 over
// the candidate roundings, each refitted by weighted least squares.
struct Affine {
  float scale = 0, offset = 0;
};
Affine fit_affine(const float* x, const float* w, int n, int nmax, bool offset_nonpositive) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  if (offset_nonpositive && lo > 0) lo = 0;
  if (!(hi > lo)) return {0.f, lo};  // a constant block (or NaN: left to the decoder's zero)
  double sw = 0, swx = 0, swxx = 0;
  for (int i = 0; i < n; ++i) {
    const double wi = weight_at(w, i);
    sw += wi, swx += wi * x[i], swxx += wi * x[i] * x[i];
  }
  // The weighted least-squares scale and offset for the rounding level(i), and its error; false
  // where that rounding cannot be fitted (every value on one level, or a scale not above 0).
  auto refit = [&](auto level, Affine* fit, double* err) {
    double swl = 0, swll = 0, swlx = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(i);
      const double wi = weight_at(w, i);
      swl += wi * l, swll += wi * l * l, swlx += wi * l * x[i];
    }
    // Normal equations of min over (s, b) of sum w (s l + b - x)^2.
    const double det = sw * swll - swl * swl;
    if (det <= 0) return false;
    double s = (sw * swlx - swl * swx) / det, b = (swll * swx - swl * swlx) / det;
    if (offset_nonpositive && b > 0) b = 0, s = swlx / swll;
    if (s <= 0) return false;
    *err = swxx - 2 * s * swlx - 2 * b * swx + s * s * swll + 2 * s * b * swl + b * b * sw;
    *fit = {static_cast<float>(s), static_cast<float>(b)};
    return true;
  };
  Affine best{(hi - lo) / nmax, lo}, fit;
  double best_err = std::numeric_limits<double>::infinity(), err;
  for (int k = kLo; k <= kHi; ++k) {
    const float iscale = (static_cast<float>(nmax) + kStep * static_cast<float>(k)) / (hi - lo);
    if (refit([&](int i) { return std::clamp(nearest(iscale * (x[i] - lo)), 0, nmax); }, &fit, &err) && err < best_err)
      best_err = err, best = fit;
  }
  // Alternate rounding against the best fit and refitting to it while the error falls.
  for (int it = 0; it < 3 && best.scale > 0; ++it) {
    const Affine cur = best;
    if (!refit([&](int i) { return std::clamp(nearest((x[i] - cur.offset) / cur.scale), 0, nmax); }, &fit, &err) || !(err < best_err))
      break;
    best_err = err, best = fit;
  }
  return best;
}

// x ~= scale * L with L in [-nmax, nmax - 1]: the symmetric blocks (Q6_K's sub-blocks, Q5_0). The
// value of largest magnitude maps near -nmax, where the extra negative level lies; the scale is
// the weighted least-squares one for each candidate rounding.
float fit_symmetric(const float* x, const float* w, int n, int nmax) {
  float v = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(v)) v = x[i];
  if (!(std::fabs(v) > 0)) return 0.f;
  // For the rounding level(i): the error at the best scale swlx / swll is sum w x^2 - swlx^2 / swll,
  // so the rounding with the largest swlx^2 / swll (its "gain") wins.
  auto refit = [&](auto level, float* scale, double* gain) {
    double swll = 0, swlx = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(i);
      const double wi = weight_at(w, i);
      swll += wi * l * l, swlx += wi * l * x[i];
    }
    if (!(swll > 0)) return false;
    *gain = swlx * swlx / swll, *scale = static_cast<float>(swlx / swll);
    return true;
  };
  float best = -static_cast<float>(v) / nmax, scale;
  double best_gain = -1, gain;
  for (int k = kLo; k <= kHi; ++k) {
    const float iscale = -(static_cast<float>(nmax) + kStep * static_cast<float>(k)) / v;
    if (refit([&](int i) { return std::clamp(nearest(iscale * x[i]), -nmax, nmax - 1); }, &scale, &gain) && gain > best_gain)
      best_gain = gain, best = scale;
  }
  for (int it = 0; it < 3 && best != 0; ++it) {  // round against the best scale, refit, while it gains
    const float cur = best;
    if (!refit([&](int i) { return std::clamp(nearest(x[i] / cur), -nmax, nmax - 1); }, &scale, &gain) || !(gain > best_gain)) break;
    best_gain = gain, best = scale;
  }
  return best;
}

// Codes non-negative values v[j] as d * q[j] with q in [0, qmax] and d stored in fp16, choosing d
// among a few candidates around max/qmax to minimise sum sw[j] (v - d q)^2 (sw: each sub-block's
// total weight, so the scales of the blocks that matter most are coded best). Returns fp16 d.
float code_scales(const float* v, const float* sw, int n, int qmax, uint8_t* q) {
  float vmax = 0;
  for (int j = 0; j < n; ++j) vmax = std::max(vmax, v[j]);
  if (!(vmax > 0)) {
    std::fill(q, q + n, 0);
    return 0.f;
  }
  float best_d = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int k = -4; k <= 4; ++k) {
    const float d = fp16_to_fp32(fp32_to_fp16(vmax / (static_cast<float>(qmax) + 0.25f * static_cast<float>(k))));
    if (!(d > 0)) continue;
    double err = 0;
    for (int j = 0; j < n; ++j) {
      const int c = std::clamp(nearest(v[j] / d), 0, qmax);
      err += static_cast<double>(sw[j]) * (v[j] - d * c) * (v[j] - d * c);
    }
    if (err < best_err) best_err = err, best_d = d;
  }
  for (int j = 0; j < n; ++j) q[j] = static_cast<uint8_t>(std::clamp(nearest(v[j] / best_d), 0, qmax));
  return best_d;
}

// Q4_K and Q5_K share everything but the width of a value (nmax 15 or 31) and where its fifth bit
// goes. Super-block: d, dmin (fp16), 12 bytes of packed 6-bit scales and mins, [qh[32]], qs[128].
void quantize_k_affine(const float* x, const float* w, uint64_t n, uint8_t* out, int nmax, uint64_t block_bytes) {
  for (uint64_t b = 0; b < n / kQKK; ++b, x += kQKK, w = w ? w + kQKK : nullptr, out += block_bytes) {
    float scales[8], mins[8], sw[8];
    for (int j = 0; j < 8; ++j) {
      const Affine a = fit_affine(x + 32 * j, w ? w + 32 * j : nullptr, 32, nmax, true);
      scales[j] = a.scale, mins[j] = -a.offset;
      sw[j] = 0;
      for (int i = 0; i < 32; ++i) sw[j] += weight_at(w ? w + 32 * j : nullptr, i);
    }
    uint8_t ls[8], lm[8];
    const float d = code_scales(scales, sw, 8, 63, ls), dmin = code_scales(mins, sw, 8, 63, lm);
    std::memset(out, 0, block_bytes);
    put_f16(out, d);
    put_f16(out + 2, dmin);
    uint8_t* sc = out + 4;
    for (int j = 0; j < 8; ++j) {
      if (j < 4) {
        sc[j] = ls[j], sc[j + 4] = lm[j];
      } else {  // low 4 bits in bytes 8..11, high 2 bits in the top of bytes 0..7
        sc[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
        sc[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
        sc[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
      }
    }
    // Every value rounded against the scale and min the decoder will use.
    const float dh = get_f16(out), mh = get_f16(out + 2);
    uint8_t L[kQKK];
    for (int j = 0; j < 8; ++j) {
      const float s = dh * ls[j], m = mh * lm[j];
      for (int i = 0; i < 32; ++i)
        L[32 * j + i] = s > 0 ? static_cast<uint8_t>(std::clamp(nearest((x[32 * j + i] + m) / s), 0, nmax)) : 0;
    }
    uint8_t* qh = nmax > 15 ? out + 16 : nullptr;
    uint8_t* qs = out + (nmax > 15 ? 48 : 16);
    // 64 values per 32 bytes: value l of sub-block 2c in the low nibble, of 2c + 1 in the high.
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        if (qh) qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63, *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequantize_k_affine(const uint8_t* in, uint64_t n, float* y, bool five_bit, uint64_t block_bytes) {
  for (uint64_t b = 0; b < n / kQKK; ++b, in += block_bytes, y += kQKK) {
    const float d = get_f16(in), dmin = get_f16(in + 2);
    const uint8_t* sc = in + 4;
    const uint8_t* qh = five_bit ? in + 16 : nullptr;
    const uint8_t* qs = in + (five_bit ? 48 : 16);
    for (int c = 0; c < 4; ++c)
      for (int half = 0; half < 2; ++half) {
        uint8_t s, m;
        scale_min_k4(2 * c + half, sc, &s, &m);
        const float ds = d * s, dm = dmin * m;
        for (int l = 0; l < 32; ++l) {
          int q = half ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
          if (qh && (qh[l] >> (2 * c + half) & 1)) q += 16;
          y[64 * c + 32 * half + l] = ds * static_cast<float>(q) - dm;
        }
      }
  }
}

}  // namespace

void quantize_q8_0(const float* x, uint64_t n, uint8_t* p) {
  // llama.cpp's own rule (amax / 127, nearest), kept so Q8_0 files match llama-quantize's bytes.
  for (uint64_t b = 0; b < n / kQK; ++b, p += kQ8_0Bytes) {
    const float* xb = x + b * kQK;
    float amax = 0;
    for (uint64_t k = 0; k < kQK; ++k) amax = std::max(amax, std::fabs(xb[k]));
    const float d = amax / 127.f;
    const float id = d != 0 ? 1.f / d : 0.f;
    put_f16(p, d);
    for (uint64_t k = 0; k < kQK; ++k) p[2 + k] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(xb[k] * id)));
  }
}

void dequantize_q8_0(const uint8_t* in, uint64_t n, float* y) {
  for (uint64_t b = 0; b < n / kQK; ++b, in += kQ8_0Bytes) {
    const float d = get_f16(in);
    for (uint64_t k = 0; k < kQK; ++k) y[b * kQK + k] = d * static_cast<int8_t>(in[2 + k]);
  }
}

// Q5_0 / Q5_1: 32 values; value j's low 4 bits in qs[j % 16] (low nibble for j < 16), its fifth bit
// in bit j of the little-endian u32 qh.
namespace {
void pack5(const uint8_t* L, uint8_t* qh, uint8_t* qs) {
  uint32_t h = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
    h |= static_cast<uint32_t>(L[j] >> 4) << j;
    h |= static_cast<uint32_t>(L[j + 16] >> 4) << (j + 16);
  }
  std::memcpy(qh, &h, 4);
}
void unpack5(const uint8_t* qh, const uint8_t* qs, int* q) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0xF) | static_cast<int>((h >> j & 1) << 4);
    q[j + 16] = (qs[j] >> 4) | static_cast<int>((h >> (j + 16) & 1) << 4);
  }
}
}  // namespace

void quantize_q5_0(const float* x, const float* w, uint64_t n, uint8_t* out) {
  for (uint64_t b = 0; b < n / kQK; ++b, x += kQK, w = w ? w + kQK : nullptr, out += kQ5_0Bytes) {
    put_f16(out, fit_symmetric(x, w, 32, 16));
    const float d = get_f16(out);
    uint8_t L[32];
    for (int i = 0; i < 32; ++i) L[i] = static_cast<uint8_t>(d != 0 ? std::clamp(nearest(x[i] / d), -16, 15) + 16 : 16);
    pack5(L, out + 2, out + 6);
  }
}

void dequantize_q5_0(const uint8_t* in, uint64_t n, float* y) {
  for (uint64_t b = 0; b < n / kQK; ++b, in += kQ5_0Bytes, y += kQK) {
    const float d = get_f16(in);
    int q[32];
    unpack5(in + 2, in + 6, q);
    for (int i = 0; i < 32; ++i) y[i] = static_cast<float>(q[i] - 16) * d;
  }
}

void quantize_q5_1(const float* x, const float* w, uint64_t n, uint8_t* out) {
  for (uint64_t b = 0; b < n / kQK; ++b, x += kQK, w = w ? w + kQK : nullptr, out += kQ5_1Bytes) {
    const Affine a = fit_affine(x, w, 32, 31, false);
    put_f16(out, a.scale);
    put_f16(out + 2, a.offset);
    const float d = get_f16(out), m = get_f16(out + 2);
    uint8_t L[32];
    for (int i = 0; i < 32; ++i) L[i] = static_cast<uint8_t>(d > 0 ? std::clamp(nearest((x[i] - m) / d), 0, 31) : 0);
    pack5(L, out + 4, out + 8);
  }
}

void dequantize_q5_1(const uint8_t* in, uint64_t n, float* y) {
  for (uint64_t b = 0; b < n / kQK; ++b, in += kQ5_1Bytes, y += kQK) {
    const float d = get_f16(in), m = get_f16(in + 2);
    int q[32];
    unpack5(in + 4, in + 8, q);
    for (int i = 0; i < 32; ++i) y[i] = static_cast<float>(q[i]) * d + m;
  }
}

void quantize_q4_k(const float* x, const float* w, uint64_t n, uint8_t* out) { quantize_k_affine(x, w, n, out, 15, kQ4_KBytes); }
void quantize_q5_k(const float* x, const float* w, uint64_t n, uint8_t* out) { quantize_k_affine(x, w, n, out, 31, kQ5_KBytes); }
void dequantize_q4_k(const uint8_t* in, uint64_t n, float* y) { dequantize_k_affine(in, n, y, false, kQ4_KBytes); }
void dequantize_q5_k(const uint8_t* in, uint64_t n, float* y) { dequantize_k_affine(in, n, y, true, kQ5_KBytes); }

// Q6_K: ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16] (one per 16 values), fp16 d.
// Value = d * scale[e / 16] * (q - 32), q in [0, 63].
void quantize_q6_k(const float* x, const float* w, uint64_t n, uint8_t* out) {
  for (uint64_t b = 0; b < n / kQKK; ++b, x += kQKK, w = w ? w + kQKK : nullptr, out += kQ6_KBytes) {
    float scales[16];
    float big = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric(x + 16 * j, w ? w + 16 * j : nullptr, 16, 32);
      if (std::fabs(scales[j]) > std::fabs(big)) big = scales[j];
    }
    std::memset(out, 0, kQ6_KBytes);
    uint8_t* ql = out;
    uint8_t* qh = out + 128;
    auto* sc = reinterpret_cast<int8_t*>(out + 192);
    // The largest sub-block scale maps to -128 (int8's extra negative level), like the values.
    put_f16(out + 208, big != 0 ? big / -128.f : 0.f);
    const float d = get_f16(out + 208);
    for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(d != 0 ? std::clamp(nearest(scales[j] / d), -128, 127) : 0);
    uint8_t L[kQKK];
    for (int j = 0; j < 16; ++j) {
      const float s = d * sc[j];
      for (int i = 0; i < 16; ++i)
        L[16 * j + i] = static_cast<uint8_t>(s != 0 ? std::clamp(nearest(x[16 * j + i] / s), -32, 31) + 32 : 32);
    }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* q = L + 128 * h;
        ql[64 * h + l] = static_cast<uint8_t>((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
        ql[64 * h + l + 32] = static_cast<uint8_t>((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
        qh[32 * h + l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
      }
  }
}

void dequantize_q6_k(const uint8_t* in, uint64_t n, float* y) {
  for (uint64_t b = 0; b < n / kQKK; ++b, in += kQ6_KBytes, y += kQKK) {
    const uint8_t* ql = in;
    const uint8_t* qh = in + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(in + 192);
    const float d = get_f16(in + 208);
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const int q0 = (ql[64 * h + l] & 0xF) | ((qh[32 * h + l] >> 0 & 3) << 4);
        const int q1 = (ql[64 * h + l + 32] & 0xF) | ((qh[32 * h + l] >> 2 & 3) << 4);
        const int q2 = (ql[64 * h + l] >> 4) | ((qh[32 * h + l] >> 4 & 3) << 4);
        const int q3 = (ql[64 * h + l + 32] >> 4) | ((qh[32 * h + l] >> 6 & 3) << 4);
        float* o = y + 128 * h;
        o[l] = d * sc[(128 * h + l) / 16] * static_cast<float>(q0 - 32);
        o[l + 32] = d * sc[(128 * h + l + 32) / 16] * static_cast<float>(q1 - 32);
        o[l + 64] = d * sc[(128 * h + l + 64) / 16] * static_cast<float>(q2 - 32);
        o[l + 96] = d * sc[(128 * h + l + 96) / 16] * static_cast<float>(q3 - 32);
      }
  }
}

}  // namespace hone
