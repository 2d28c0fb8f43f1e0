// Fused fp32 CPU kernels (see fused_cpu.h). Loops run over rows on ATen's thread pool; the inner
// loops are plain enough for the compiler to vectorise. The cross entropy's exponentials stay in
// ATen's softmax; SwiGLU's use common/fast_math.h.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/fused_cpu.h"

#include "common/parallel.h"

#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/fast_math.h"

namespace hone {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---- RMSNorm ----------------------------------------------------------------------------------
// y = w * x * r with r = 1/sqrt(mean(x^2) + eps) per row. Backward, with n = x * r and g = dy * w:
// dx = r * (g - n * mean(g * n)), dw = sum over rows of dy * n.
struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w, double eps) {
    auto x = x_in.contiguous();
    const int64_t H = x.size(-1), rows = x.numel() / H;
    auto y = at::empty_like(x);
    auto r = at::empty({rows}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = r.data_ptr<float>();
    const float fe = static_cast<float>(eps);
    parallel_for(0, rows, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const float* a = xp + i * H;
        float ss = 0;
        for (int64_t j = 0; j < H; ++j) ss += a[j] * a[j];
        const float ri = 1.0f / std::sqrt(ss / static_cast<float>(H) + fe);
        rp[i] = ri;
        float* o = yp + i * H;
        for (int64_t j = 0; j < H; ++j) o[j] = wp[j] * (a[j] * ri);
      }
    });
    ctx->save_for_backward({x, w, r});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto &x = s[0], &w = s[1], &r = s[2];
    auto dy = grads[0].contiguous();
    const int64_t H = x.size(-1), rows = x.numel() / H;
    auto dx = at::empty_like(x);
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *rp = r.data_ptr<float>(), *gp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    // dw is a sum over rows: each chunk of rows keeps its own partial sum, added up at the end.
    // Under LoRA the norm weights are frozen, and the sums are skipped.
    const bool want_dw = ctx->needs_input_grad(1);
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
    std::vector<std::vector<float>> part(static_cast<size_t>(want_dw ? chunks : 0), std::vector<float>(static_cast<size_t>(H), 0.f));
    parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        float* dw = want_dw ? part[static_cast<size_t>(c)].data() : nullptr;
        const int64_t lo = rows * c / chunks, hi = rows * (c + 1) / chunks;
        for (int64_t i = lo; i < hi; ++i) {
          const float* a = xp + i * H;
          const float* g = gp + i * H;
          const float ri = rp[i];
          float dot = 0;  // sum_j g_j w_j n_j
          for (int64_t j = 0; j < H; ++j) {
            const float n = a[j] * ri;
            dot += g[j] * wp[j] * n;
          }
          if (dw)
            for (int64_t j = 0; j < H; ++j) dw[j] += g[j] * a[j] * ri;
          const float m = dot / static_cast<float>(H);
          float* o = dxp + i * H;
          for (int64_t j = 0; j < H; ++j) o[j] = ri * (g[j] * wp[j] - a[j] * ri * m);
        }
      }
    });
    at::Tensor dw;
    if (want_dw) {
      dw = at::zeros({H}, x.options());
      float* d = dw.data_ptr<float>();
      for (const auto& p : part)
        for (int64_t j = 0; j < H; ++j) d[j] += p[static_cast<size_t>(j)];
    }
    return {dx, dw, at::Tensor()};
  }
};

// ---- RoPE -------------------------------------------------------------------------------------
// y1 = x1 c1 - x2 s1, y2 = x2 c2 + x1 s2 (halves of the head dimension; c1 = cos[:D/2], ...).
// Its transpose: dx1 = dy1 c1 + dy2 s2, dx2 = dy2 c2 - dy1 s1.
template <bool kTranspose>
void rope_rows(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, at::Tensor& y) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), h = D / 2;
  const int64_t sb = x.stride(0), sh = x.stride(1), st = x.stride(2), sd = x.stride(3);
  const float *xp = x.data_ptr<float>(), *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  parallel_for(0, B * H, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, hd = bh % H;
      for (int64_t t = 0; t < T; ++t) {
        const float* a = xp + b * sb + hd * sh + t * st;
        const float* c = cp + (b * T + t) * D;
        const float* s = sp + (b * T + t) * D;
        float* o = yp + ((b * H + hd) * T + t) * D;
        for (int64_t d = 0; d < h; ++d) {
          const float x1 = a[d * sd], x2 = a[(d + h) * sd];
          if (kTranspose) {
            o[d] = x1 * c[d] + x2 * s[d + h];
            o[d + h] = x2 * c[d + h] - x1 * s[d];
          } else {
            o[d] = x1 * c[d] - x2 * s[d];
            o[d + h] = x2 * c[d + h] + x1 * s[d + h];
          }
        }
      }
    }
  });
}

struct RopeFn : public torch::autograd::Function<RopeFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    auto y = at::empty({x.size(0), x.size(1), x.size(2), x.size(3)}, x.options());
    rope_rows<false>(x, cos, sin, y);
    ctx->save_for_backward({cos, sin});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto& g = grads[0];
    auto dx = at::empty({g.size(0), g.size(1), g.size(2), g.size(3)}, g.options());
    rope_rows<true>(g, s[0], s[1], dx);
    return {dx, at::Tensor(), at::Tensor()};
  }
};

// ---- Cross entropy ----------------------------------------------------------------------------
struct CrossEntropyFn : public torch::autograd::Function<CrossEntropyFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits_in, const at::Tensor& labels_in, int64_t ignore) {
    auto logits = logits_in.contiguous();
    auto labels = labels_in.contiguous();
    const int64_t N = logits.size(0), V = logits.size(1);
    auto grad = at::_softmax(logits, 1, false);  // [N, V]; becomes softmax - onehot below
    const float* lp = logits.data_ptr<float>();
    const int64_t* yp = labels.data_ptr<int64_t>();
    float* gp = grad.data_ptr<float>();
    std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
    parallel_for(0, N, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const int64_t y = yp[i];
        float* g = gp + i * V;
        if (y == ignore) {
          std::fill(g, g + V, 0.f);
          continue;
        }
        TORCH_CHECK(y >= 0 && y < V, "cross entropy: label ", y, " is outside the vocabulary of ", V);
        // -log p_y from the softmax already computed; when p_y underflows, logsumexp - l_y directly.
        if (g[y] > 1e-30f) {
          row_loss[static_cast<size_t>(i)] = -std::log(static_cast<double>(g[y]));
        } else {
          const float* l = lp + i * V;
          float mx = l[0];
          for (int64_t j = 1; j < V; ++j) mx = std::max(mx, l[j]);
          double sum = 0;
          for (int64_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(l[j] - mx));
          row_loss[static_cast<size_t>(i)] = mx + std::log(sum) - l[y];
        }
        g[y] -= 1.f;
      }
    });
    double total = 0;
    for (double v : row_loss) total += v;
    ctx->save_for_backward({grad});
    return at::scalar_tensor(total, logits.options());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto grad = ctx->get_saved_variables()[0];
    return {grad * grads[0], at::Tensor(), at::Tensor()};
  }
};

// ---- bf16 <-> fp32 ------------------------------------------------------------------------------
// To nearest, ties to even; NaN stays NaN (c10::BFloat16's rounding). Straight-line, so that the
// loops using it vectorize.
inline uint16_t bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>(nan ? 0x7fc0u : r);
}
inline float bf16_widen(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- SwiGLU ------------------------------------------------------------------------------------
__attribute__((target_clones("avx512f", "avx2", "default")))
void swiglu_span(const float* g, const float* u, float* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = g[i] * sigmoid_f(g[i]) * u[i];
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void swiglu_back_span(const float* d, const float* g, const float* u, float* dg, float* du, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = sigmoid_f(g[i]);
    const float silu = g[i] * s;
    du[i] = d[i] * silu;
    dg[i] = d[i] * u[i] * (s + silu * (1.0f - s));  // d silu / dg = s (1 + g (1 - s))
  }
}

// The bf16 variants below work in blocks of kBlock through fp32 buffers on the stack, so that the
// exponentials run in the fp32 loops above: a loop that mixes 16- and 32-bit elements vectorized
// at 16 bytes in every clone (GCC 12), and ran SwiGLU 2.3x slower (measured in bench --profile).
constexpr int64_t kBlock = 512;

// The conversions with AVX-512 where the CPU has it (16 values an instruction; GCC's own vectorizing
// of these 16/32-bit loops stopped at 16-byte vectors and took 0.7 ms a layer more than fp32 in
// SwiGLU's backward), the plain loops elsewhere.
bool has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

__attribute__((target("avx512f"))) void round_to_bf16_avx512(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), qnan = _mm512_set1_epi32(0x7fc0);
  for (; i + 16 <= n; i += 16) {
    const __m512 f = _mm512_loadu_ps(x + i);
    const __m512i u = _mm512_castps_si512(f);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, bias), lsb), 16);  // to nearest, ties to even
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q), qnan);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm512_cvtepi32_epi16(r));
  }
  for (; i < n; ++i) y[i] = bf16_round(x[i]);
}

__attribute__((target("avx512f"))) void widen_bf16_avx512(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
  for (; i < n; ++i) y[i] = bf16_widen(x[i]);
}

__attribute__((target_clones("avx2", "default")))
void round_to_bf16_plain(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_round(x[i]);
}

__attribute__((target_clones("avx2", "default")))
void widen_bf16_plain(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_widen(x[i]);
}

}  // namespace

void round_to_bf16_span(const float* x, uint16_t* y, int64_t n) {
  if (has_avx512f()) round_to_bf16_avx512(x, y, n);
  else round_to_bf16_plain(x, y, n);
}

namespace {

void widen_bf16_span(const uint16_t* x, float* y, int64_t n) {
  if (has_avx512f()) widen_bf16_avx512(x, y, n);
  else widen_bf16_plain(x, y, n);
}

// The product from fp32 g and u, writing their bf16 roundings for backward while they are in cache.
void swiglu_keep16_span(const float* g, const float* u, float* a, uint16_t* g16, uint16_t* u16, int64_t n) {
  for (int64_t o = 0; o < n; o += kBlock) {
    const int64_t m = std::min(kBlock, n - o);
    swiglu_span(g + o, u + o, a + o, m);
    round_to_bf16_span(g + o, g16 + o, m);
    round_to_bf16_span(u + o, u16 + o, m);
  }
}

// The product again from the kept bf16 g and u (the down adapter's dA in backward).
void swiglu16_span(const uint16_t* g16, const uint16_t* u16, float* a, int64_t n) {
  alignas(64) float g[kBlock], u[kBlock];
  for (int64_t o = 0; o < n; o += kBlock) {
    const int64_t m = std::min(kBlock, n - o);
    widen_bf16_span(g16 + o, g, m);
    widen_bf16_span(u16 + o, u, m);
    swiglu_span(g, u, a + o, m);
  }
}

void swiglu_back16_span(const float* d, const uint16_t* g16, const uint16_t* u16, float* dg, float* du, int64_t n) {
  alignas(64) float g[kBlock], u[kBlock];
  for (int64_t o = 0; o < n; o += kBlock) {
    const int64_t m = std::min(kBlock, n - o);
    widen_bf16_span(g16 + o, g, m);
    widen_bf16_span(u16 + o, u, m);
    swiglu_back_span(d + o, g, u, dg + o, du + o, m);
  }
}

constexpr int64_t kSpan = 1 << 14;  // elements per task: 64 KB of each input

__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_row(float* x, int64_t n) {
  constexpr int W = 16;  // independent partial results, so that the reductions vectorize
  const int64_t nw = n / W * W;
  float mx[W], sm[W];
  for (int k = 0; k < W; ++k) mx[k] = std::numeric_limits<float>::lowest(), sm[k] = 0.f;
  for (int64_t j = 0; j < nw; j += W)
    for (int k = 0; k < W; ++k) mx[k] = x[j + k] > mx[k] ? x[j + k] : mx[k];
  float m = std::numeric_limits<float>::lowest();
  for (int64_t j = nw; j < n; ++j) m = std::max(m, x[j]);
  for (int k = 0; k < W; ++k) m = std::max(m, mx[k]);
  for (int64_t j = 0; j < nw; j += W)
    for (int k = 0; k < W; ++k) {
      const float e = exp_nonpos(x[j + k] - m);
      x[j + k] = e;
      sm[k] += e;
    }
  float s = 0.f;
  for (int64_t j = nw; j < n; ++j) {
    x[j] = exp_nonpos(x[j] - m);
    s += x[j];
  }
  for (int k = 0; k < W; ++k) s += sm[k];
  const float inv = 1.0f / s;
  for (int64_t j = 0; j < n; ++j) x[j] *= inv;
}

}  // namespace

bool swiglu_operands(const at::Tensor& g, const at::Tensor& u) {
  return g.sizes() == u.sizes() && g.is_contiguous() && u.is_contiguous() && g.device().is_cpu() && u.device().is_cpu() &&
         g.scalar_type() == u.scalar_type() && (g.scalar_type() == at::kFloat || g.scalar_type() == at::kBFloat16);
}

namespace {
const uint16_t* bf16_data(const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }
}  // namespace

at::Tensor fused_swiglu(const at::Tensor& g, const at::Tensor& u) {
  TORCH_CHECK(swiglu_operands(g, u), "fused_swiglu: contiguous fp32 or bf16 CPU tensors of one shape and dtype");
  auto a = at::empty(g.sizes(), g.options().dtype(at::kFloat));
  float* ap = a.data_ptr<float>();
  const int64_t n = g.numel();
  if (g.scalar_type() == at::kBFloat16) {
    const uint16_t *gp = bf16_data(g), *up = bf16_data(u);
    parallel_for(0, (n + kSpan - 1) / kSpan, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) swiglu16_span(gp + c * kSpan, up + c * kSpan, ap + c * kSpan, std::min(kSpan, n - c * kSpan));
    });
    return a;
  }
  const float *gp = g.data_ptr<float>(), *up = u.data_ptr<float>();
  parallel_for(0, (n + kSpan - 1) / kSpan, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) swiglu_span(gp + c * kSpan, up + c * kSpan, ap + c * kSpan, std::min(kSpan, n - c * kSpan));
  });
  return a;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> fused_swiglu_keep_bf16(const at::Tensor& g, const at::Tensor& u) {
  TORCH_CHECK(swiglu_operands(g, u) && g.scalar_type() == at::kFloat, "fused_swiglu_keep_bf16: contiguous fp32 CPU tensors of one shape");
  auto a = at::empty_like(g);
  auto g16 = at::empty(g.sizes(), g.options().dtype(at::kBFloat16)), u16 = at::empty_like(g16);
  const float *gp = g.data_ptr<float>(), *up = u.data_ptr<float>();
  float* ap = a.data_ptr<float>();
  auto *g16p = reinterpret_cast<uint16_t*>(g16.data_ptr<at::BFloat16>()), *u16p = reinterpret_cast<uint16_t*>(u16.data_ptr<at::BFloat16>());
  const int64_t n = g.numel();
  parallel_for(0, (n + kSpan - 1) / kSpan, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t o = c * kSpan;
      swiglu_keep16_span(gp + o, up + o, ap + o, g16p + o, u16p + o, std::min(kSpan, n - o));
    }
  });
  return {a, g16, u16};
}

void fused_softmax_lastdim_(at::Tensor& s) {
  TORCH_CHECK(fused_cpu_applies(s) && s.is_contiguous() && s.dim() >= 1, "fused softmax: a contiguous fp32 CPU tensor");
  const int64_t n = s.size(-1), rows = n ? s.numel() / n : 0;
  float* p = s.data_ptr<float>();
  parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) softmax_row(p + i * n, n);
  });
}

namespace {

__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_back_row(float* d, const float* p, int64_t n) {
  constexpr int W = 16;  // independent partial sums, so that the reduction vectorizes
  float acc[W] = {};
  const int64_t nw = n / W * W;
  for (int64_t j = 0; j < nw; j += W)
    for (int k = 0; k < W; ++k) acc[k] += p[j + k] * d[j + k];
  float dot = 0.f;
  for (int64_t j = nw; j < n; ++j) dot += p[j] * d[j];
  for (int k = 0; k < W; ++k) dot += acc[k];
  for (int64_t j = 0; j < n; ++j) d[j] = p[j] * (d[j] - dot);
}

}  // namespace

void fused_softmax_backward_lastdim_(at::Tensor& d, const at::Tensor& p) {
  TORCH_CHECK(fused_cpu_applies(d) && fused_cpu_applies(p) && d.is_contiguous() && p.is_contiguous() && d.sizes() == p.sizes() &&
                  d.dim() >= 1,
              "fused softmax backward: contiguous fp32 CPU tensors of one shape");
  const int64_t n = d.size(-1), rows = n ? d.numel() / n : 0;
  float* dp = d.data_ptr<float>();
  const float* pp = p.data_ptr<float>();
  parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) softmax_back_row(dp + i * n, pp + i * n, n);
  });
}

std::pair<at::Tensor, at::Tensor> fused_swiglu_backward(const at::Tensor& d_in, const at::Tensor& g, const at::Tensor& u) {
  auto d = d_in.contiguous();
  TORCH_CHECK(swiglu_operands(g, u) && d.sizes() == g.sizes() && fused_cpu_applies(d),
              "fused_swiglu_backward: contiguous CPU tensors of one shape, d fp32, g and u fp32 or bf16");
  auto dg = at::empty_like(d), du = at::empty_like(d);
  const float* dp = d.data_ptr<float>();
  float *dgp = dg.data_ptr<float>(), *dup = du.data_ptr<float>();
  const int64_t n = g.numel();
  if (g.scalar_type() == at::kBFloat16) {
    const uint16_t *gp = bf16_data(g), *up = bf16_data(u);
    parallel_for(0, (n + kSpan - 1) / kSpan, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        const int64_t o = c * kSpan;
        swiglu_back16_span(dp + o, gp + o, up + o, dgp + o, dup + o, std::min(kSpan, n - o));
      }
    });
    return {dg, du};
  }
  const float *gp = g.data_ptr<float>(), *up = u.data_ptr<float>();
  parallel_for(0, (n + kSpan - 1) / kSpan, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t o = c * kSpan;
      swiglu_back_span(dp + o, gp + o, up + o, dgp + o, dup + o, std::min(kSpan, n - o));
    }
  });
  return {dg, du};
}

bool fused_cpu_applies(const at::Tensor& x) { return x.device().is_cpu() && x.scalar_type() == at::kFloat; }

at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  TORCH_CHECK(w.dim() == 1 && w.size(0) == x.size(-1) && w.scalar_type() == at::kFloat, "fused RMSNorm: weight must be fp32 [H]");
  return RmsNormFn::apply(x, w.contiguous(), eps);
}

at::Tensor fused_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  TORCH_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "fused RoPE: x must be [B, H, T, D] with an even D");
  const auto shape = std::vector<int64_t>{x.size(0), x.size(2), x.size(3)};
  auto c = cos.to(at::kFloat).expand(shape).contiguous(), s = sin.to(at::kFloat).expand(shape).contiguous();
  return RopeFn::apply(x, c, s);
}

at::Tensor fused_cross_entropy_sum(const at::Tensor& logits, const at::Tensor& labels, int64_t ignore_index) {
  TORCH_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0), "fused cross entropy: logits [N, V], labels [N]");
  return CrossEntropyFn::apply(logits, labels.to(at::kLong), ignore_index);
}

at::Tensor fused_to_bf16(const at::Tensor& x) {
  TORCH_CHECK(fused_cpu_applies(x) && x.is_contiguous(), "fused_to_bf16: a contiguous fp32 CPU tensor expected");
  at::Tensor y = at::empty(x.sizes(), x.options().dtype(at::kBFloat16));
  const float* xp = x.data_ptr<float>();
  auto* yp = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
  constexpr int64_t kSpan = 1 << 16;  // elements per task: 256 KB read
  const int64_t n = x.numel();
  parallel_for(0, (n + kSpan - 1) / kSpan, 1, [&](int64_t lo, int64_t hi) {
    const int64_t b = lo * kSpan, e = std::min(n, hi * kSpan);
    round_to_bf16_span(xp + b, yp + b, e - b);
  });
  return y;
}

at::Tensor fused_from_bf16(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kBFloat16 && x.is_contiguous(), "fused_from_bf16: a contiguous bf16 CPU tensor expected");
  at::Tensor y = at::empty(x.sizes(), x.options().dtype(at::kFloat));
  const uint16_t* xp = bf16_data(x);
  float* yp = y.data_ptr<float>();
  constexpr int64_t kSpan = 1 << 16;
  const int64_t n = x.numel();
  parallel_for(0, (n + kSpan - 1) / kSpan, 1, [&](int64_t lo, int64_t hi) {
    const int64_t b = lo * kSpan, e = std::min(n, hi * kSpan);
    widen_bf16_span(xp + b, yp + b, e - b);
  });
  return y;
}

}  // namespace hone
