// NF4 quantization. Codes: nearest of the 16 NormalFloat values to w/absmax (bucketize against
// the midpoints). Double quantization: absmax - mean(absmax) stored as int8 with one fp32 scale
// per 256 blocks: 4 + 8/64 + 32/(64*256) ~= 4.127 bits per weight.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/nf4.h"

#include "common/parallel.h"

#include "model/cpu_gemm.h"
#include "model/nf4_bf16.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace hone {

const float kNF4Codebook[16] = {-1.0f,
                                -0.6961928009986877f,
                                -0.5250730514526367f,
                                -0.39491748809814453f,
                                -0.28444138169288635f,
                                -0.18477343022823334f,
                                -0.09105003625154495f,
                                0.0f,
                                0.07958029955625534f,
                                0.16093020141124725f,
                                0.24611230194568634f,
                                0.33791524171829224f,
                                0.44070982933044434f,
                                0.5626170039176941f,
                                0.7229568362236023f,
                                1.0f};

namespace {
at::Tensor codebook(const at::Device& dev) {
  return at::from_blob(const_cast<float*>(kNF4Codebook), {16}, at::kFloat).to(dev);
}
}  // namespace

int64_t NF4Weight::bytes() const {
  return codes.numel() + absmax_q.numel() + absmax_scale.numel() * 4 + 8;
}

at::Tensor nf4_nearest_code(const at::Tensor& normalized) {
  auto cb = codebook(normalized.device());
  auto mid = (cb.narrow(0, 0, 15) + cb.narrow(0, 1, 15)) / 2;  // [15]
  return at::bucketize(normalized.contiguous(), mid);            // ties go to the lower code
}

NF4Weight nf4_quantize(const at::Tensor& w_in) {
  at::NoGradGuard ng;
  NF4Weight q;
  q.shape.assign(w_in.sizes().begin(), w_in.sizes().end());
  q.numel = w_in.numel();
  auto w = w_in.detach().to(at::kFloat).reshape({-1});
  const int64_t nblocks = (q.numel + kNF4Block - 1) / kNF4Block;
  if (nblocks * kNF4Block != q.numel) w = at::cat({w, at::zeros({nblocks * kNF4Block - q.numel}, w.options())});
  auto blocks = w.view({nblocks, kNF4Block});
  auto absmax = blocks.abs().amax(1);                                            // [n]
  auto safe = at::where(absmax > 0, absmax, at::ones_like(absmax));
  auto idx = nf4_nearest_code(blocks / safe.unsqueeze(1)).to(at::kByte).view({-1});  // [n*64]
  auto pairs = idx.view({-1, 2});
  q.codes = (pairs.select(1, 0) * 16 + pairs.select(1, 1)).to(at::kByte).contiguous();
  // Double quantization of the absmax values.
  q.absmax_offset = absmax.mean().item<double>();
  auto centered = absmax - q.absmax_offset;
  const int64_t ng2 = (nblocks + kNF4AbsmaxBlock - 1) / kNF4AbsmaxBlock;
  auto padded = ng2 * kNF4AbsmaxBlock == nblocks ? centered : at::cat({centered, at::zeros({ng2 * kNF4AbsmaxBlock - nblocks})});
  auto groups = padded.view({ng2, kNF4AbsmaxBlock});
  q.absmax_scale = (groups.abs().amax(1) / 127.0).clamp_min(1e-12).contiguous();  // [ng2]
  q.absmax_q = (groups / q.absmax_scale.unsqueeze(1)).round().clamp(-127, 127).to(at::kChar).view({-1}).narrow(0, 0, nblocks).contiguous();
  return q;
}

namespace {

#if defined(__x86_64__)
// One full block of 64 codes through two 16-entry look-ups a byte on AVX2: the nibbles become
// byte indices (high nibble first, as packed), then fp32 values come from two 8-lane permutes
// blended on the index's bit 3, and bf16 ones from byte shuffles of the table's low and high bytes.
// The table is the scalar path's, so the output is the same bits.
__attribute__((target("avx2"))) void block_indices(const uint8_t* c, __m128i idx[4]) {
  const __m128i m = _mm_set1_epi8(15);
  for (int h = 0; h < 2; ++h) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16 * h));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), m), lo = _mm_and_si128(bytes, m);
    idx[2 * h] = _mm_unpacklo_epi8(hi, lo);  // outputs 32h + 0..15
    idx[2 * h + 1] = _mm_unpackhi_epi8(hi, lo);
  }
}

__attribute__((target("avx2"))) void block_avx2(const uint8_t* c, const float* table, float* o) {
  const __m256 t0 = _mm256_loadu_ps(table), t1 = _mm256_loadu_ps(table + 8);
  __m128i idx[4];
  block_indices(c, idx);
  for (int k = 0; k < 8; ++k) {
    const __m256i i = _mm256_cvtepu8_epi32(k % 2 == 0 ? idx[k / 2] : _mm_srli_si128(idx[k / 2], 8));
    const __m256 pick = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28));  // sign bit = index >= 8
    _mm256_storeu_ps(o + 8 * k, _mm256_blendv_ps(_mm256_permutevar8x32_ps(t0, i), _mm256_permutevar8x32_ps(t1, i), pick));
  }
}

__attribute__((target("avx2"))) void block_avx2(const uint8_t* c, const at::BFloat16* table, at::BFloat16* o) {
  alignas(16) uint8_t lo_bytes[16], hi_bytes[16];
  for (int i = 0; i < 16; ++i) {
    lo_bytes[i] = static_cast<uint8_t>(table[i].x & 0xff);
    hi_bytes[i] = static_cast<uint8_t>(table[i].x >> 8);
  }
  const __m128i tl = _mm_load_si128(reinterpret_cast<const __m128i*>(lo_bytes));
  const __m128i th = _mm_load_si128(reinterpret_cast<const __m128i*>(hi_bytes));
  __m128i idx[4];
  block_indices(c, idx);
  for (int k = 0; k < 4; ++k) {
    const __m128i l = _mm_shuffle_epi8(tl, idx[k]), h = _mm_shuffle_epi8(th, idx[k]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 16 * k), _mm_unpacklo_epi8(l, h));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 16 * k + 8), _mm_unpackhi_epi8(l, h));
  }
}

// Initialised before main: __builtin_cpu_supports is only reliable there after __builtin_cpu_init.
const bool kHaveAvx2 = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
#endif

// One pass over the codes on the CPU: per block of 64, a 16-entry table of codebook[i] * absmax in
// the output type, then two table look-ups a byte. The arithmetic is the same as the ATen path's
// (absmax = float(q) * scale + offset in fp32, then the product in fp32, rounded to nearest even
// for bf16), so both give the same bits; this one writes the weight once and allocates nothing
// else (the ATen chain widened every code to int64 first: 8 bytes an element, and 9 passes).
template <typename T>
void dequantize_cpu(const uint8_t* codes, const int8_t* aq, const float* ascale, float offset, int64_t numel, T* out) {
  const int64_t nblocks = (numel + kNF4Block - 1) / kNF4Block;
  parallel_for(0, nblocks, 1024, [&](int64_t b0, int64_t b1) {
    T table[16];
    for (int64_t b = b0; b < b1; ++b) {
      const float scaled = static_cast<float>(aq[b]) * ascale[b / kNF4AbsmaxBlock];
      const float absmax = scaled + offset;
      for (int i = 0; i < 16; ++i) table[i] = static_cast<T>(kNF4Codebook[i] * absmax);
      const uint8_t* c = codes + b * (kNF4Block / 2);
      T* o = out + b * kNF4Block;
      if ((b + 1) * kNF4Block <= numel) {
#if defined(__x86_64__)
        if (kHaveAvx2) {
          block_avx2(c, table, o);
          continue;
        }
#endif
        for (int64_t j = 0; j < kNF4Block / 2; ++j) {
          o[2 * j] = table[c[j] >> 4];
          o[2 * j + 1] = table[c[j] & 15];
        }
      } else {  // the last, partial block
        for (int64_t e = 0; e < numel - b * kNF4Block; ++e) o[e] = table[(e % 2 == 0) ? (c[e / 2] >> 4) : (c[e / 2] & 15)];
      }
    }
  });
}

}  // namespace

at::Tensor nf4_dequantize(const at::Tensor& codes, const at::Tensor& absmax_q, const at::Tensor& absmax_scale, double offset,
                          at::IntArrayRef shape, at::ScalarType dtype) {
  const int64_t nblocks = absmax_q.numel();
  int64_t numel = 1;
  for (auto s : shape) numel *= s;
  // Untrusted sizes (a checkpoint's buffers): the codes and scales must cover the shape.
  TORCH_CHECK(nblocks == (numel + kNF4Block - 1) / kNF4Block && codes.numel() == nblocks * (kNF4Block / 2) &&
                  absmax_scale.numel() == (nblocks + kNF4AbsmaxBlock - 1) / kNF4AbsmaxBlock,
              "NF4 weight: ", codes.numel(), " code bytes, ", nblocks, " block scales and ", absmax_scale.numel(),
              " group scales do not fit a weight of ", numel, " values");
  RECORD_FUNCTION("hone::nf4_dequantize", std::vector<c10::IValue>());  // its own row in bench --profile
  if (codes.device().is_cpu() && (dtype == at::kFloat || dtype == at::kBFloat16) && codes.scalar_type() == at::kByte &&
      absmax_q.scalar_type() == at::kChar && absmax_scale.scalar_type() == at::kFloat) {
    auto c = codes.contiguous(), q = absmax_q.contiguous(), s = absmax_scale.contiguous();
    at::Tensor w = at::empty(shape, codes.options().dtype(dtype));
    if (dtype == at::kFloat)
      dequantize_cpu(c.data_ptr<uint8_t>(), q.data_ptr<int8_t>(), s.data_ptr<float>(), static_cast<float>(offset), numel,
                     w.data_ptr<float>());
    else
      dequantize_cpu(c.data_ptr<uint8_t>(), q.data_ptr<int8_t>(), s.data_ptr<float>(), static_cast<float>(offset), numel,
                     w.data_ptr<at::BFloat16>());
    return w;
  }
  // Other devices: the same arithmetic as tensor ops.
  auto hi = at::bitwise_right_shift(codes, 4);
  auto lo = at::bitwise_and(codes, 15);
  auto idx = at::stack({hi, lo}, 1).view({-1}).to(at::kLong);                       // [n*64]
  auto vals = codebook(codes.device()).index_select(0, idx).view({nblocks, kNF4Block});
  auto scale = absmax_scale.repeat_interleave(kNF4AbsmaxBlock).narrow(0, 0, nblocks);  // [n]
  auto absmax = absmax_q.to(at::kFloat) * scale + offset;                              // [n]
  auto w = (vals * absmax.unsqueeze(1)).view({-1});
  if (w.numel() != numel) w = w.narrow(0, 0, numel);
  return w.view(shape).to(dtype);
}

at::Tensor nf4_dequantize(const NF4Weight& q, at::ScalarType dtype) {
  return nf4_dequantize(q.codes, q.absmax_q, q.absmax_scale, q.absmax_offset, q.shape, dtype);
}

QuantError nf4_error(const at::Tensor& w, const NF4Weight& q) {
  at::NoGradGuard ng;
  auto wf = w.detach().to(at::kFloat);
  auto d = nf4_dequantize(q) - wf;
  QuantError e;
  e.relative_frobenius = (d.norm() / wf.norm().clamp_min(1e-30)).item<double>();
  e.max_abs = d.abs().max().item<double>();
  return e;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y = x W^T with W dequantized for each product and dropped after it: only the codes and scales
// are kept for backward, which dequantizes again. `bf16` dequantizes to bf16 and runs the product
// on the bf16 unit with fp32 accumulation (nf4_bf16.h); otherwise W is dequantized to x's type and
// the fp32 products go through Hone's GEMM path (oneDNN where it applies, model/cpu_gemm.h).
struct NF4MatMul : public torch::autograd::Function<NF4MatMul> {
  static at::Tensor product(const at::Tensor& a, const at::Tensor& w, bool bf16) {
    if (!bf16) return matmul_f32(a, w);
    auto sizes = a.sizes().vec();
    sizes.back() = w.size(1);
    return gemm_f32(a.reshape({-1, w.size(0)}), w).view(sizes);
  }
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& codes, const at::Tensor& absmax_q,
                            const at::Tensor& absmax_scale, double offset, int64_t out, int64_t in, bool bf16) {
    ctx->save_for_backward({codes, absmax_q, absmax_scale});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["out"] = out;
    ctx->saved_data["in"] = in;
    ctx->saved_data["bf16"] = bf16;
    auto w = nf4_dequantize(codes, absmax_q, absmax_scale, offset, {out, in}, bf16 ? at::kBFloat16 : x.scalar_type());  // [out, in]
    return product(x, w.t(), bf16);  // [..., out]
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto s = ctx->get_saved_variables();
    const int64_t out = ctx->saved_data["out"].toInt(), in = ctx->saved_data["in"].toInt();
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    auto w = nf4_dequantize(s[0], s[1], s[2], ctx->saved_data["offset"].toDouble(), {out, in},
                            bf16 ? at::kBFloat16 : grad[0].scalar_type());
    return {product(grad[0], w, bf16), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

at::Tensor nf4_apply(const at::Tensor& x, const NF4Weight& q, const at::Tensor& bias, bool bf16) {
  TORCH_CHECK(q.shape.size() == 2 && x.size(-1) == q.shape[1], "NF4 linear: input of ", x.size(-1), " features for a [",
              q.shape.empty() ? 0 : q.shape[0], ", ", q.shape.size() < 2 ? 0 : q.shape[1], "] weight");
  auto y = NF4MatMul::apply(x, q.codes, q.absmax_q, q.absmax_scale, q.absmax_offset, q.shape[0], q.shape[1], bf16);
  return bias.defined() ? y + bias : y;
}

}  // namespace

at::Tensor nf4_linear_bf16(const at::Tensor& x, const NF4Weight& q, const at::Tensor& bias) { return nf4_apply(x, q, bias, true); }

at::Tensor nf4_linear(const at::Tensor& x, const NF4Weight& q, const at::Tensor& bias) { return nf4_apply(x, q, bias, false); }

}  // namespace hone
