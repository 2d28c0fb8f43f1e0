// Blocked causal attention (see blocked_attention.h). For a block of n query rows ending at
// absolute position e, only keys [0, e] can be allowed, so the block works on [B*nh, n, e+1]
// scores. Backward, per block: s and p recomputed, dV += p^T dO, dP = dO V^T,
// dS = p * (dP - rowsum(p * dP)) (times 1 - tanh^2 under soft-capping), dQ = dS K * scale,
// dK += dS^T Q * scale.
#include "model/blocked_attention.h"

#include <torch/autograd.h>

#include <algorithm>

#include "model/cpu_gemm.h"
#include "model/fused_cpu.h"

namespace hone {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t rows_per_block(int64_t BH, int64_t T, int64_t S, int64_t asked) {
  if (asked > 0) return std::min(T, asked);
  const int64_t budget = (8LL << 20) / 4;  // fp32 scores in about 8 MB
  return std::max<int64_t>(1, std::min(T, std::max<int64_t>(16, budget / std::max<int64_t>(BH * S, 1))));
}

// The block products: oneDNN for fp32 on the CPU (model/cpu_gemm.h: 2-7x ATen's bmm at these
// shapes, which loops over heads with one small GEMM each), ATen otherwise.
bool fp32(const at::Tensor& a, const at::Tensor& b) { return a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat; }
at::Tensor mm3(const at::Tensor& a, const at::Tensor& b, double alpha = 1.0) {  // alpha * a b
  if (fp32(a, b)) return bmm_f32(a, b, alpha);
  auto c = at::bmm(a, b);
  return alpha == 1.0 ? c : c.mul_(alpha);
}
void mm3_into(at::Tensor c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {  // c (+)= alpha * a b
  if (fp32(a, b) && c.scalar_type() == at::kFloat) return bmm_f32_out(c, a, b, alpha, accumulate);
  if (accumulate) c.baddbmm_(a, b, 1.0, alpha);
  else c.copy_(at::bmm(a, b).mul_(alpha));
}

struct Block {
  int64_t qs, n, keys;  // query rows [qs, qs + n), keys [0, keys)
};

// Scores and probabilities of one block: qb [BH, n, D], kb/vb [BH, keys, D], mb [B, 1, n, keys].
struct Probs {
  at::Tensor capped;  // tanh(q k^T * scale / cap) under soft-capping (for backward), else undefined
  at::Tensor p;       // [BH, n, keys] softmax in fp32
};

Probs block_probs(const at::Tensor& qb, const at::Tensor& kb, const at::Tensor& mb, int64_t B, int64_t nh, double scale,
                  double cap) {
  const int64_t n = qb.size(1), keys = kb.size(1);
  Probs r;
  at::Tensor s;
  if (cap > 0) {
    r.capped = at::tanh(mm3(qb, kb.transpose(1, 2), scale / cap));
    s = r.capped * cap;
  } else {
    s = mm3(qb, kb.transpose(1, 2), scale);  // [BH, n, keys]
  }
  s.view({B, nh, n, keys}).add_(mb);  // the mask broadcast over heads, not copied per head
  if (fused_cpu_applies(s) && s.is_contiguous()) {
    fused_softmax_lastdim_(s);  // in place: ATen's softmax computes exp one element at a time here
    r.p = s;
  } else {
    r.p = at::softmax(s, -1, at::kFloat);
  }
  return r;
}

std::vector<Block> blocks(int64_t BH, int64_t T, int64_t S, int64_t asked) {
  const int64_t rows = rows_per_block(BH, T, S, asked), past = S - T;
  std::vector<Block> out;
  for (int64_t qs = 0; qs < T; qs += rows) {
    const int64_t n = std::min(rows, T - qs);
    out.push_back({qs, n, std::min(S, past + qs + n)});
  }
  return out;
}

// [B, nh, L, D] rows [s, s + n) as [B*nh, n, D] (a view when the layout allows, else a copy).
at::Tensor rows_of(const at::Tensor& x, int64_t s, int64_t n) {
  return x.narrow(2, s, n).reshape({x.size(0) * x.size(1), n, x.size(3)});
}

// k or v [B, nkv, S, D] rows [0, n) for every query head: [B*nh, n, D]. Under GQA each kv head
// serves nh / nkv query heads; the repeat exists only while one block is computed, so that the
// function keeps k and v at nkv heads for backward (Qwen2.5-0.5B: 2 kv heads for 14, 75 MB less
// over 24 layers at T 512).
at::Tensor kv_rows(const at::Tensor& x, int64_t n, int64_t nh) {
  const int64_t B = x.size(0), nkv = x.size(1), D = x.size(3);
  if (nkv == nh) return rows_of(x, 0, n);
  return x.narrow(2, 0, n).unsqueeze(2).expand({B, nkv, nh / nkv, n, D}).reshape({B * nh, n, D});
}

// The per-query-head gradient [B*nh, S, D] summed over the query heads that share each kv head.
at::Tensor kv_grad(const at::Tensor& g, int64_t B, int64_t nh, int64_t nkv, int64_t S, int64_t D) {
  if (nkv == nh) return g.view({B, nh, S, D});
  return g.view({B, nkv, nh / nkv, S, D}).sum(2);
}

struct BlockedAttentionFn : public torch::autograd::Function<BlockedAttentionFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, double scale, double cap, int64_t block_rows) {
    const int64_t B = q.size(0), nh = q.size(1), T = q.size(2), S = k.size(2), D = q.size(3);
    auto out = at::empty({B, nh, T, D}, q.options());
    for (const Block& b : blocks(B * nh, T, S, block_rows)) {
      auto qb = rows_of(q, b.qs, b.n);
      auto kb = kv_rows(k, b.keys, nh), vb = kv_rows(v, b.keys, nh);
      Probs pr = block_probs(qb, kb, mask.narrow(2, b.qs, b.n).narrow(3, 0, b.keys), B, nh, scale, cap);
      mm3_into(out.narrow(2, b.qs, b.n).view({B * nh, b.n, D}), pr.p.to(vb.scalar_type()), vb, 1.0, false);
    }
    ctx->save_for_backward({q, k, v, mask});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["cap"] = cap;
    ctx->saved_data["rows"] = block_rows;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto sv = ctx->get_saved_variables();
    const at::Tensor &q = sv[0], &k = sv[1], &v = sv[2], &mask = sv[3];
    const double scale = ctx->saved_data["scale"].toDouble(), cap = ctx->saved_data["cap"].toDouble();
    const int64_t B = q.size(0), nh = q.size(1), T = q.size(2), S = k.size(2), D = q.size(3), nkv = k.size(1);
    const at::Tensor dout = grads[0].contiguous();  // [B, nh, T, D]
    // dq: every row is written by its block; contiguous, so that a block of rows is one [BH, n, D] view.
    auto dq = at::empty({B, nh, T, D}, q.options()), dk = at::zeros({B * nh, S, D}, k.options()), dv = at::zeros({B * nh, S, D}, v.options());
    for (const Block& b : blocks(B * nh, T, S, ctx->saved_data["rows"].toInt())) {
      auto qb = rows_of(q, b.qs, b.n);
      auto kb = kv_rows(k, b.keys, nh), vb = kv_rows(v, b.keys, nh);
      auto dob = rows_of(dout, b.qs, b.n);  // [BH, n, D]
      Probs pr = block_probs(qb, kb, mask.narrow(2, b.qs, b.n).narrow(3, 0, b.keys), B, nh, scale, cap);
      const auto& p = pr.p;                                                          // [BH, n, keys]
      mm3_into(dv.narrow(1, 0, b.keys), p.transpose(1, 2).to(dob.scalar_type()), dob, 1.0, true);  // += p^T dO
      auto dp = mm3(dob, vb.transpose(1, 2)).to(at::kFloat);                                    // [BH, n, keys]
      auto ds = dp;
      ds.sub_((p * dp).sum(-1, true)).mul_(p);  // p * (dP - rowsum(p * dP)), in dP's buffer
      if (cap > 0) ds.mul_(1.0 - pr.capped.square());
      ds = ds.to(q.scalar_type());
      mm3_into(dq.narrow(2, b.qs, b.n).view({B * nh, b.n, D}), ds, kb, scale, false);
      mm3_into(dk.narrow(1, 0, b.keys), ds.transpose(1, 2), qb, scale, true);  // += dS^T Q * scale
    }
    return {dq, kv_grad(dk, B, nh, nkv, S, D), kv_grad(dv, B, nh, nkv, S, D), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, double scale,
                             double softcap, int64_t block_rows) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(1) > 0 && q.size(1) % k.size(1) == 0 &&
                  k.sizes() == v.sizes() && q.size(3) == k.size(3),
              "blocked attention: q [B, nh, T, D], k and v [B, nkv, S, D] with nkv dividing nh");
  TORCH_CHECK(mask.dim() == 4 && mask.size(2) == q.size(2) && mask.size(3) == k.size(2), "blocked attention: mask [B, 1, T, S]");
  return BlockedAttentionFn::apply(q, k, v, mask, scale, softcap, block_rows);
}

}  // namespace hone
