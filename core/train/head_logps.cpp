// Chunked head + log-softmax (see head_logps.h). Per chunk of c positions: a = h_c W^T [c, V],
// z = softcap(a), y = z / temperature, log p = log_softmax(y); the gradient of log p(target) with
// respect to a is (onehot - p) / temperature * (1 - (z / cap)^2), and with respect to h_c that
// times W. Only one chunk's [c, V] buffers live at a time.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/head_logps.h"
#include <ATen/record_function.h>

#include "common/parallel.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/fast_math.h"
#include "model/cpu_gemm.h"
#include "model/fused_cpu.h"

namespace hone {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Params {
  double cap, temp;
  int64_t ignore, chunk;
  bool entropy;
};

int64_t rows_per_chunk(int64_t N, int64_t V, int64_t asked) {
  return std::min(N, asked > 0 ? asked : head_chunk_rows(V));
}

// One chunk's forward quantities. a: [c, V] fp32 head outputs (raw), t: [c] int64 targets.
struct Chunk {
  at::Tensor z;      // [c, V] soft-capped logits (a itself without a cap)
  at::Tensor logp;   // [c, V] log-softmax of z / temperature
  at::Tensor valid;  // [c] bool
  at::Tensor tsafe;  // [c, 1] targets with ignored ones set to 0
};

Chunk chunk_forward(const at::Tensor& a, const at::Tensor& t, const Params& p) {
  Chunk k;
  k.z = p.cap > 0 ? at::tanh(a / p.cap) * p.cap : a;
  k.logp = at::log_softmax(p.temp != 1.0 ? k.z / p.temp : k.z, 1);  // [c, V]
  k.valid = t.ne(p.ignore);
  k.tsafe = at::where(k.valid, t, at::zeros_like(t)).unsqueeze(1);  // [c, 1]
  return k;
}

// d log p(target) / d a, each row scaled by scale[row] (0 for ignored rows): [c, V], in place of
// the chunk's log-softmax buffer.
at::Tensor chunk_grad(Chunk& k, const at::Tensor& scale, const Params& p) {
  at::Tensor d = k.logp.exp_().neg_();                                        // -p
  d.scatter_add_(1, k.tsafe, at::ones({d.size(0), 1}, d.options()));          // onehot - p
  d.mul_((scale * k.valid.to(scale.scalar_type()) / p.temp).unsqueeze(1));
  if (p.cap > 0) d.mul_(1.0 - (k.z / p.cap).square());                          // through tanh
  return d;
}

at::Tensor as_float(const at::Tensor& x) { return x.scalar_type() == at::kFloat ? x : x.to(at::kFloat); }

// fp32 hidden states against a bf16-stored head (base_dtype "bf16": bf16 operands, fp32 products),
// or against an fp32 one where oneDNN runs the fp32 GEMMs (model/cpu_gemm.h).
bool fast_gemm(const at::Tensor& h, const at::Tensor& w) {
  if (h.scalar_type() != at::kFloat) return false;
  if (w.scalar_type() == at::kBFloat16) return true;
  return w.scalar_type() == at::kFloat && h.device().is_cpu() && onednn_f32_gemm();
}
at::Tensor head_out(const at::Tensor& hc, const at::Tensor& w) {  // [n, H] x [V, H]^T -> [n, V] fp32
  return fast_gemm(hc, w) ? gemm_f32(hc, w.t()) : as_float(at::mm(hc, w.t()));
}
at::Tensor head_back(const at::Tensor& d, const at::Tensor& w, const at::Tensor& h) {  // [n, V] x [V, H] -> [n, H]
  return fast_gemm(h, w) ? gemm_f32(d, w) : at::mm(d.to(w.scalar_type()), w);
}

// ---- The fused row kernel -------------------------------------------------------------------
// log_softmax over a 55 x 152k chunk took 80-100 ms (no vectorized exp in Debian's libtorch,
// common/fast_math.h), most of the head's time once its GEMM ran in bf16. This kernel makes 2-3
// passes over each row, one exp per entry, in place on the chunk's buffer.

struct RowResult {
  float logp = 0, zsum = 0, entropy = 0;
};

// One row a[0..V) of raw head outputs (no soft-cap), y = a / temperature. Returns log p(target)
// (0 when target < 0: an ignored row), sum of a, and the entropy. With grad, a is overwritten with
// d log p(target) / d a = (onehot - p) / temperature * scale (zeros for an ignored row).
__attribute__((target_clones("avx512f", "avx2", "default")))
RowResult head_row(float* a, int64_t V, int64_t target, float inv_temp, bool grad, float scale, bool entropy) {
  constexpr int W = 16;  // independent partial results, so that the reductions vectorize
  float mx[W];
  double sm[W];  // the logit sum is reported; a float sum of 150k terms drifts
  for (int k = 0; k < W; ++k) mx[k] = std::numeric_limits<float>::lowest(), sm[k] = 0.0;
  const int64_t Vw = V / W * W;
  for (int64_t j = 0; j < Vw; j += W)
    for (int k = 0; k < W; ++k) {
      const float v = a[j + k];
      mx[k] = v > mx[k] ? v : mx[k];
      sm[k] += v;
    }
  float m = std::numeric_limits<float>::lowest();
  double zsum = 0.0;
  for (int64_t j = Vw; j < V; ++j) m = std::max(m, a[j]), zsum += a[j];
  for (int k = 0; k < W; ++k) m = std::max(m, mx[k]), zsum += sm[k];
  const float at = target >= 0 ? a[target] : 0.f;
  // exp((a - m) / T), kept in a when the gradient needs it; sums of e and of e * (a - m) / T.
  float es[W], ey[W];
  for (int k = 0; k < W; ++k) es[k] = 0.f, ey[k] = 0.f;
  for (int64_t j = 0; j < Vw; j += W)
    for (int k = 0; k < W; ++k) {
      const float y = (a[j + k] - m) * inv_temp;
      const float e = exp_nonpos(y);
      es[k] += e;
      ey[k] += e * y;
      if (grad) a[j + k] = e;
    }
  float s = 0.f, sy = 0.f;
  for (int64_t j = Vw; j < V; ++j) {
    const float y = (a[j] - m) * inv_temp;
    const float e = exp_nonpos(y);
    s += e;
    sy += e * y;
    if (grad) a[j] = e;
  }
  for (int k = 0; k < W; ++k) s += es[k], sy += ey[k];
  const float log_s = std::log(s);
  RowResult r;
  r.zsum = static_cast<float>(zsum);
  if (entropy) r.entropy = log_s - sy / s;  // -sum p log p with log p = y' - log s
  if (target >= 0) r.logp = (at - m) * inv_temp - log_s;
  if (grad) {
    if (target < 0) {
      std::fill(a, a + V, 0.f);
    } else {
      const float f = -scale * inv_temp / s;
      for (int64_t j = 0; j < V; ++j) a[j] *= f;
      a[target] += scale * inv_temp;
    }
  }
  return r;
}

// The fused path: CPU fp32 hidden states, a head in fp32 or bf16, no soft-cap.
bool fused_head_applies(const at::Tensor& h, const at::Tensor& w, double cap) {
  return cap == 0 && h.device().is_cpu() && h.scalar_type() == at::kFloat &&
         (w.scalar_type() == at::kFloat || w.scalar_type() == at::kBFloat16) && !w.requires_grad();
}

void head_out_into(at::Tensor& a, const at::Tensor& hc, const at::Tensor& w) {  // a [n, V] = hc w^T
  if (fast_gemm(hc, w)) gemm_f32_out(a, hc, w.t());
  else at::mm_out(a, hc, w.t());
}

struct HeadLogpsFn : public torch::autograd::Function<HeadLogpsFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& t,
                               double cap, double temp, int64_t ignore, int64_t chunk, bool entropy) {
    const Params p{cap, temp, ignore, chunk, entropy};
    const int64_t N = h.size(0), V = w.size(0);
    // Where the head is frozen the gradient for h is formed here; a trainable head recomputes.
    const bool grad_h = h.requires_grad() && !w.requires_grad();
    auto logps = at::zeros({N}, h.options().dtype(at::kFloat));
    auto lsum = at::zeros({N}, logps.options());
    auto ent = at::zeros({entropy ? N : 0}, logps.options());
    at::Tensor jac = grad_h ? at::empty_like(h) : at::Tensor();  // [N, H]: d log p(target_i) / d h_i
    const int64_t c = rows_per_chunk(N, V, chunk);
    if (fused_head_applies(h, w, cap)) {
      // One [c, V] buffer for every chunk: fresh 33 MB allocations each fault their pages in.
      at::Tensor buf = at::empty({c, V}, h.options().dtype(at::kFloat));
      const at::Tensor tt = t.contiguous();
      const int64_t* tp = tt.data_ptr<int64_t>();
      float* lp = logps.data_ptr<float>();
      float* sp = lsum.data_ptr<float>();
      float* ep = entropy ? ent.data_ptr<float>() : nullptr;
      for (int64_t s = 0; s < N; s += c) {
        const int64_t n = std::min(c, N - s);
        at::Tensor a = buf.narrow(0, 0, n);
        head_out_into(a, h.narrow(0, s, n), w);  // [n, V]
        float* ap = a.data_ptr<float>();
        parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) {
            const int64_t ti = tp[s + i];
            const RowResult r = head_row(ap + i * V, V, ti == ignore ? -1 : ti, static_cast<float>(1.0 / temp), grad_h, 1.f, entropy);
            lp[s + i] = r.logp;
            sp[s + i] = r.zsum;
            if (ep) ep[s + i] = r.entropy;
          }
        });
        if (grad_h) {
          at::Tensor jn = jac.narrow(0, s, n);  // [n, H], contiguous rows
          // A bf16 head takes the gradient in bf16 anyway: rounded in the chunk's own buffer
          // rather than into a new [n, V] copy, made here at the step's peak memory.
          if (w.scalar_type() == at::kBFloat16 && onednn_bf16_gemm()) {
            // In vocabulary slices accumulating into jn: [n, 152k] x [152k, 896] in one GEMM ran
            // at 239 GFLOP/s (64 rows, Zen 4), in 16k slices at 270-290.
            const at::Tensor d16 = fused_to_bf16_rows_inplace(a);  // [n, V] bf16
            constexpr int64_t kSlice = 16384;
            for (int64_t v = 0; v < V; v += kSlice) {
              const int64_t m = std::min(kSlice, V - v);
              gemm_f32_out(jn, d16.narrow(1, v, m), w.narrow(0, v, m), 1.0, v > 0);
            }
          } else {
            jn.copy_(head_back(a, w, h));
          }
        }
      }
    } else
    for (int64_t s = 0; s < N; s += c) {
      const int64_t n = std::min(c, N - s);
      auto hc = h.narrow(0, s, n);
      auto tc = t.narrow(0, s, n);
      auto a = head_out(hc, w);  // [n, V]
      Chunk k = chunk_forward(a, tc, p);
      logps.narrow(0, s, n).copy_(k.logp.gather(1, k.tsafe).squeeze(1) * k.valid);
      lsum.narrow(0, s, n).copy_(k.z.sum(1));
      if (entropy) ent.narrow(0, s, n).copy_(-(k.logp.exp() * k.logp).sum(1));
      if (grad_h) {
        auto d = chunk_grad(k, at::ones({n}, logps.options()), p);
        jac.narrow(0, s, n).copy_(head_back(d, w, h));  // [n, H]
      }
    }
    ctx->saved_data["cap"] = cap;
    ctx->saved_data["temp"] = temp;
    ctx->saved_data["ignore"] = ignore;
    ctx->saved_data["chunk"] = c;
    ctx->saved_data["recompute"] = !grad_h;
    if (grad_h) ctx->save_for_backward({jac});
    else ctx->save_for_backward({h, w, t});
    ctx->mark_non_differentiable({lsum, ent});
    return {logps, lsum, ent};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor g = grads[0];  // [N]
    if (!ctx->saved_data["recompute"].toBool()) {
      const at::Tensor& jac = saved[0];
      if (!g.defined()) return {at::zeros_like(jac), at::Tensor(), at::Tensor(), {}, {}, {}, {}, {}};
      return {jac * g.to(jac.scalar_type()).unsqueeze(1), at::Tensor(), at::Tensor(), {}, {}, {}, {}, {}};
    }
    const at::Tensor &h = saved[0], &w = saved[1], &t = saved[2];
    const Params p{ctx->saved_data["cap"].toDouble(), ctx->saved_data["temp"].toDouble(), ctx->saved_data["ignore"].toInt(),
                   ctx->saved_data["chunk"].toInt(), false};
    const int64_t N = h.size(0);
    at::Tensor gh = at::zeros_like(h), gw = at::zeros(w.sizes(), w.options().dtype(at::kFloat));
    if (g.defined()) {
      for (int64_t s = 0; s < N; s += p.chunk) {
        const int64_t n = std::min(p.chunk, N - s);
        auto hc = h.narrow(0, s, n);
        Chunk k = chunk_forward(head_out(hc, w), t.narrow(0, s, n), p);
        auto d = chunk_grad(k, as_float(g.narrow(0, s, n)), p);  // [n, V]
        gh.narrow(0, s, n).copy_(head_back(d, w, h));
        gw.addmm_(d.t(), as_float(hc));  // [V, H] += [V, n] [n, H]
      }
    }
    return {h.requires_grad() ? gh : at::Tensor(), w.requires_grad() ? gw.to(w.scalar_type()) : at::Tensor(), at::Tensor(),
            {}, {}, {}, {}, {}};
  }
};

}  // namespace

int64_t head_chunk_rows(int64_t V) {
  // About 120 MB of fp32 logits, in a multiple of 32 rows where that fits. The head's two bf16
  // GEMMs run faster with more rows: on Zen 4 ([rows, 896] x [896, 152k], 2 cores) 254 GFLOP/s
  // with 55 rows, 294 with 64, 358 with 128; on the AVX512-BF16 EPYC the Qwen2.5-0.5B LoRA step
  // took 260 tokens/s with 64 rows (40 MB), 270 with 128, 272-295 with 192 and 281-293 with 256
  // (interleaved triples; 192 against 64 +5.8% run either way round), each 64 rows more adding
  // 40 MB to the peak. 48 and 80 were no faster than the multiple of 32 below them.
  const int64_t rows = ((120LL << 20) / 4) / std::max<int64_t>(V, 1);
  return rows >= 32 ? rows / 32 * 32 : std::max<int64_t>(16, rows);
}

HeadLogps head_token_logps(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                           const HeadLogpsOptions& opt) {
  RECORD_FUNCTION("hone::head", std::vector<c10::IValue>());
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
              "head log-probs: hidden [N, H] and weight [V, H] must agree on H");
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0), "head log-probs: targets must be [N]");
  TORCH_CHECK(opt.temperature > 0, "head log-probs: temperature must be positive");
  const auto t = targets.to(at::kLong).contiguous();
  {
    // Out-of-range targets would index past a row; the other recipes' check, said once here.
    auto bad = t.ne(opt.ignore_index).logical_and(t.lt(0).logical_or(t.ge(weight.size(0))));
    TORCH_CHECK(!bad.any().item<bool>(), "head log-probs: a target is outside the vocabulary of ", weight.size(0));
  }
  // Only the rows with a target go through the head: an SFT prompt, a DPO pair's prompt and a
  // batch's padding are often most of the rows, and the head is a quarter of a 0.5B model's work.
  // The kept rows are gathered into [M, H] (index_select's backward scatters their gradient back,
  // zero for the rest) and the results put back in place, ignored rows reading 0.
  const at::Tensor valid = t.ne(opt.ignore_index);
  const int64_t N = hidden.size(0), M = valid.sum().item<int64_t>();
  const at::Tensor idx = M < N ? at::nonzero(valid).squeeze(1) : at::Tensor();  // [M]
  const at::Tensor h = M < N ? hidden.index_select(0, idx) : hidden.contiguous();
  const at::Tensor tk = M < N ? t.index_select(0, idx) : t;
  auto out = HeadLogpsFn::apply(h, weight, tk, opt.softcap, opt.temperature, opt.ignore_index, opt.chunk_rows, opt.entropy);
  auto place = [&](const at::Tensor& x) { return M < N ? at::zeros({N}, x.options()).index_copy(0, idx, x) : x; };
  HeadLogps r;
  r.logps = place(out[0]);
  r.logit_sum = place(out[1]);
  if (opt.entropy) r.entropy = place(out[2]);
  return r;
}

}  // namespace hone
