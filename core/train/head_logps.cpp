// Head + log-softmax without the [N, vocab] logits (see head_logps.h). Two paths: a frozen head on
// the CPU without a soft-cap goes a vocabulary panel at a time with an online softmax (below);
// otherwise per chunk of c positions: a = h_c W^T [c, V], z = softcap(a), y = z / temperature,
// log p = log_softmax(y); the gradient of log p(target) with respect to a is
// (onehot - p) / temperature * (1 - (z / cap)^2), and with respect to h_c that times W. Only one
// chunk's [c, V] buffers live at a time.
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

// ---- The panel path --------------------------------------------------------------------------
// A frozen head without a soft-cap on the CPU (every LoRA and QLoRA run, and scoring). The logits
// of a block of up to kBlockRows positions are made one vocabulary panel at a time ([R, P] fp32,
// about 2 MB: it stays in cache) and never all at once. Each row keeps a running
// max m of its outputs, the sum s of e = exp((a - m) / T) and, for the gradient, acc = sum over the
// vocabulary of e_v W_v; when a panel raises a row's max, what it had summed is scaled by
// exp((m_old - m_new) / T) (the online softmax flash attention uses). At the end
// log p(t) = (a_t - m) / T - log s and d log p(t) / d h = (W_t - acc / s) / T. Each panel of the
// head's weight is read once for both GEMMs while it is in cache: the 120 MB chunks this replaced
// read it twice per 192 rows, and their logits went out to memory and back.

// Rows per block. In the Qwen2.5-0.5B-shape LoRA step (511 rows, 152k vocabulary, bf16 head) the
// two GEMMs took 335-345 ms a step in blocks of 256 rows and 2,048-entry panels, 365-385 in one
// block of 511 (panels of 1,024-4,096 alike), 360-370 with 128 or 192 rows; 64 rows 455.
constexpr int64_t kBlockRows = 256;

// a [n, V] = hc w^T; hc may be the bf16 rounding of the hidden states, for a bf16 head.
void head_out_into(at::Tensor& a, const at::Tensor& hc, const at::Tensor& w) {
  if (w.scalar_type() == at::kBFloat16 || fast_gemm(hc, w)) gemm_f32_out(a, hc, w.t());
  else at::mm_out(a, hc, w.t());
}

// Vocabulary entries per panel: [rows, P] fp32 about 2 MB (2,048 at 256 rows; 1,536 and 3,072 ran
// alike, 4,096 slower), a multiple of 256, at least 256.
int64_t panel_cols(int64_t rows, int64_t V, int64_t asked) {
  if (asked > 0) return std::min(asked, V);
  const int64_t p = (int64_t{1} << 19) / std::max<int64_t>(rows, 1) / 256 * 256;
  return std::min(V, std::max<int64_t>(256, p));
}

struct PanelRow {
  float m = std::numeric_limits<float>::lowest();  // running max of the raw outputs
  float s = 0, sy = 0;  // sums of e = exp((a - m) / T) and of e * (a - m) / T (the entropy's)
  float at = 0;         // the output at the target
  double zsum = 0;      // the logit sum is reported; a float sum of 150k terms drifts
};

// Row i's visit to one panel a[0..P) of raw outputs; tloc is the target's place in the panel or -1.
// With keep, a is overwritten with e. Returns the factor for what the row accumulated from earlier
// panels (1 when its max did not rise; 0 on its first panel).
__attribute__((target_clones("avx512f", "avx2", "default")))
float panel_row(float* a, int64_t P, int64_t tloc, float inv_temp, bool keep, PanelRow& r) {
  constexpr int W = 16;  // independent partial results, so that the reductions vectorize
  float mx[W];
  double sm[W];
  for (int k = 0; k < W; ++k) mx[k] = std::numeric_limits<float>::lowest(), sm[k] = 0.0;
  const int64_t Pw = P / W * W;
  for (int64_t j = 0; j < Pw; j += W)
    for (int k = 0; k < W; ++k) {
      const float v = a[j + k];
      mx[k] = v > mx[k] ? v : mx[k];
      sm[k] += v;
    }
  float pm = std::numeric_limits<float>::lowest();
  double zsum = 0.0;
  for (int64_t j = Pw; j < P; ++j) pm = std::max(pm, a[j]), zsum += a[j];
  for (int k = 0; k < W; ++k) pm = std::max(pm, mx[k]), zsum += sm[k];
  r.zsum += zsum;
  if (tloc >= 0) r.at = a[tloc];
  float alpha = 1.f;
  if (pm > r.m) {
    if (r.s > 0) {
      // Each earlier y = (a - m) / T drops by d, each e is scaled by exp(d).
      const float d = (r.m - pm) * inv_temp;
      alpha = exp_nonpos(d);
      r.sy = alpha * (r.sy + d * r.s);
      r.s *= alpha;
    } else {
      alpha = 0.f;
    }
    r.m = pm;
  }
  const float m = r.m;
  float es[W], ey[W];
  for (int k = 0; k < W; ++k) es[k] = 0.f, ey[k] = 0.f;
  for (int64_t j = 0; j < Pw; j += W)
    for (int k = 0; k < W; ++k) {
      const float y = (a[j + k] - m) * inv_temp;
      const float e = exp_nonpos(y);
      es[k] += e;
      ey[k] += e * y;
      if (keep) a[j + k] = e;
    }
  float s = 0.f, sy = 0.f;
  for (int64_t j = Pw; j < P; ++j) {
    const float y = (a[j] - m) * inv_temp;
    const float e = exp_nonpos(y);
    s += e;
    sy += e * y;
    if (keep) a[j] = e;
  }
  for (int k = 0; k < W; ++k) s += es[k], sy += ey[k];
  r.s += s;
  r.sy += sy;
  return alpha;
}

bool panel_path_applies(const at::Tensor& h, const at::Tensor& w, double cap) {
  return cap == 0 && h.device().is_cpu() && h.scalar_type() == at::kFloat &&
         (w.scalar_type() == at::kFloat || w.scalar_type() == at::kBFloat16) && !w.requires_grad();
}

// The first n * cols values of a buffer as a contiguous [n, cols] matrix (a last, narrower panel).
at::Tensor leading(const at::Tensor& buf, int64_t n, int64_t cols) { return buf.view(-1).narrow(0, 0, n * cols).view({n, cols}); }

// Forward over the panels; jac (when defined) receives d log p(target) / d h for every row.
void panel_forward(const at::Tensor& h, const at::Tensor& w, const at::Tensor& t, const Params& p, at::Tensor& logps,
                   at::Tensor& lsum, at::Tensor& ent, at::Tensor jac, int64_t panel) {
  const int64_t N = h.size(0), V = w.size(0), H = h.size(1);
  const int64_t R = std::min(N, p.chunk > 0 ? p.chunk : kBlockRows);
  const int64_t P = panel_cols(R, V, panel);
  const bool grad = jac.defined();
  const bool w16 = w.scalar_type() == at::kBFloat16;
  const float inv_temp = static_cast<float>(1.0 / p.temp);
  at::Tensor abuf = at::empty({R, P}, h.options().dtype(at::kFloat));
  at::Tensor ebuf = grad && w16 ? at::empty({R, P}, h.options().dtype(at::kBFloat16)) : at::Tensor();
  at::Tensor acc = grad ? at::empty({R, H}, h.options().dtype(at::kFloat)) : at::Tensor();
  const at::Tensor tt = t.contiguous();
  const int64_t* tp = tt.data_ptr<int64_t>();
  float* lp = logps.data_ptr<float>();
  float* sp = lsum.data_ptr<float>();
  float* ep = p.entropy ? ent.data_ptr<float>() : nullptr;
  std::vector<PanelRow> rows(static_cast<size_t>(R));
  for (int64_t s0 = 0; s0 < N; s0 += R) {
    const int64_t n = std::min(R, N - s0);
    // A bf16 head's GEMMs take the block's rows in bf16: rounded once here, not once per panel.
    const at::Tensor hb = w16 ? fused_to_bf16(h.narrow(0, s0, n).contiguous()) : h.narrow(0, s0, n);  // [n, H]
    std::fill(rows.begin(), rows.end(), PanelRow{});
    at::Tensor accn = grad ? acc.narrow(0, 0, n) : at::Tensor();  // [n, H]
    float* accp = grad ? accn.data_ptr<float>() : nullptr;
    for (int64_t v0 = 0; v0 < V; v0 += P) {
      const int64_t pc = std::min(P, V - v0);
      const at::Tensor wp = w.narrow(0, v0, pc);  // [pc, H]
      at::Tensor a = leading(abuf, n, pc);          // [n, pc]
      head_out_into(a, hb, wp);
      float* ap = a.data_ptr<float>();
      uint16_t* e16 = grad && w16 ? reinterpret_cast<uint16_t*>(ebuf.data_ptr<at::BFloat16>()) : nullptr;
      parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          const int64_t ti = tp[s0 + i];
          const int64_t tloc = ti != p.ignore && ti >= v0 && ti < v0 + pc ? ti - v0 : -1;
          const float alpha = panel_row(ap + i * pc, pc, tloc, inv_temp, grad, rows[static_cast<size_t>(i)]);
          if (!grad) continue;
          if (v0 > 0 && alpha != 1.f)
            for (int64_t k = 0; k < H; ++k) accp[i * H + k] *= alpha;
          if (e16) round_to_bf16_span(ap + i * pc, e16 + i * pc, pc);
        }
      });
      if (grad) gemm_f32_out(accn, w16 ? leading(ebuf, n, pc) : a, wp, 1.0, v0 > 0);  // [n, H] += e [n, pc] x W [pc, H]
    }
    for (int64_t i = 0; i < n; ++i) {
      const PanelRow& r = rows[static_cast<size_t>(i)];
      const float log_s = std::log(r.s);
      const bool valid = tp[s0 + i] != p.ignore;
      lp[s0 + i] = valid ? (r.at - r.m) * inv_temp - log_s : 0.f;
      sp[s0 + i] = static_cast<float>(r.zsum);
      if (ep) ep[s0 + i] = log_s - r.sy / r.s;  // -sum p log p with log p = y - log s
    }
    if (grad) {
      // (W_t - acc / s) / T, zero for an ignored row.
      const at::Tensor tb = tt.narrow(0, s0, n);
      const at::Tensor valid = tb.ne(p.ignore);
      const at::Tensor wt = w.index_select(0, at::where(valid, tb, at::zeros_like(tb))).to(at::kFloat);  // [n, H]
      at::Tensor sum = at::empty({n}, accn.options());  // [n]
      float* sum_p = sum.data_ptr<float>();
      for (int64_t i = 0; i < n; ++i) sum_p[i] = rows[static_cast<size_t>(i)].s;
      jac.narrow(0, s0, n).copy_((wt - accn / sum.unsqueeze(1)).mul_(valid.to(at::kFloat).mul_(inv_temp).unsqueeze(1)));
    }
  }
}

struct HeadLogpsFn : public torch::autograd::Function<HeadLogpsFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& t,
                               double cap, double temp, int64_t ignore, int64_t chunk, int64_t panel, bool entropy) {
    const Params p{cap, temp, ignore, chunk, entropy};
    const int64_t N = h.size(0), V = w.size(0);
    // Where the head is frozen the gradient for h is formed here; a trainable head recomputes.
    const bool grad_h = h.requires_grad() && !w.requires_grad();
    auto logps = at::zeros({N}, h.options().dtype(at::kFloat));
    auto lsum = at::zeros({N}, logps.options());
    auto ent = at::zeros({entropy ? N : 0}, logps.options());
    at::Tensor jac = grad_h ? at::empty_like(h) : at::Tensor();  // [N, H]: d log p(target_i) / d h_i
    const int64_t c = rows_per_chunk(N, V, chunk);
    if (panel_path_applies(h, w, cap)) {
      panel_forward(h, w, t, p, logps, lsum, ent, jac, panel);
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
      if (!g.defined()) return {at::zeros_like(jac), at::Tensor(), at::Tensor(), {}, {}, {}, {}, {}, {}};
      return {jac * g.to(jac.scalar_type()).unsqueeze(1), at::Tensor(), at::Tensor(), {}, {}, {}, {}, {}, {}};
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
            {}, {}, {}, {}, {}, {}};
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
  auto out = HeadLogpsFn::apply(h, weight, tk, opt.softcap, opt.temperature, opt.ignore_index, opt.chunk_rows, opt.panel_cols, opt.entropy);
  auto place = [&](const at::Tensor& x) { return M < N ? at::zeros({N}, x.options()).index_copy(0, idx, x) : x; };
  HeadLogps r;
  r.logps = place(out[0]);
  r.logit_sum = place(out[1]);
  if (opt.entropy) r.entropy = place(out[2]);
  return r;
}

}  // namespace hone
