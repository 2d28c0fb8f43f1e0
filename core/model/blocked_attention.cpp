// Blocked causal attention (see blocked_attention.h). For a block of n query rows ending at
// absolute position e, only keys [0, e] can be allowed, so the block works on [B*nh, n, e+1]
// scores. Backward, per block: s and p recomputed, dV += p^T dO, dP = dO V^T,
// dS = p * (dP - rowsum(p * dP)) (times 1 - tanh^2 under soft-capping), dQ = dS K * scale,
// dK += dS^T Q * scale.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/blocked_attention.h"

#include <torch/autograd.h>

#include <algorithm>

#include "model/cpu_gemm.h"
#include "model/fused_cpu.h"

namespace hone {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows per block: fp32 scores in about 8 MB, and at most 128 rows, since a block computes the
// scores of all its keys and masks the causal triangle off afterwards: at T 512 the 8 MB rule gave
// two blocks of 292 and 220 rows, half the first block's products wasted; 128-row blocks made
// attention 1.7x faster there (Qwen2.5-0.5B's heads, forward and backward, Zen 3, measured).
int64_t rows_per_block(int64_t BH, int64_t T, int64_t S, int64_t asked) {
  if (asked > 0) return std::min(T, asked);
  const int64_t budget = (8LL << 20) / 4;
  const int64_t rows = std::min<int64_t>(128, std::max<int64_t>(16, budget / std::max<int64_t>(BH * S, 1)));
  return std::max<int64_t>(1, std::min(T, rows));
}

// The block products (model/cpu_gemm.h): oneDNN for fp32 on AVX2/AVX-512 CPUs, 2-7x ATen's bmm at these
// shapes (which loops over heads with one small GEMM each); at::matmul otherwise. Operands are
// grouped by kv head, [B*nkv, g, rows, D] with g = nh / nkv query heads per kv head, and the kv
// side is broadcast over g instead of repeated (the copies took 180 ms of a 3.5 s step on
// Qwen2.5-0.5B's shape, 14 query heads over 2 kv heads).
// bf16 operands (both) go the same way, with fp32 output.
bool fp32(const at::Tensor& a, const at::Tensor& b) {
  const auto t = a.scalar_type();
  return t == b.scalar_type() && (t == at::kFloat || (t == at::kBFloat16 && a.device().is_cpu() && b.device().is_cpu()));
}
at::Tensor mm4(const at::Tensor& a, const at::Tensor& b, double alpha = 1.0) {  // alpha * a b
  if (fp32(a, b)) return bmm_f32(a, b, alpha);
  auto c = at::matmul(a, b);
  return alpha == 1.0 ? c : c.mul_(alpha);
}
void mm4_into(const at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {  // c (+)= alpha a b
  if (fp32(a, b) && c.scalar_type() == at::kFloat) return matmul_f32_out(c, a, b, alpha, accumulate);
  auto p = at::matmul(a, b);
  if (alpha != 1.0) p.mul_(alpha);
  if (accumulate) c.add_(p.to(c.scalar_type()));
  else c.copy_(p);
}

// An operand of the products: x itself, or rounded to bf16 (Hone's kernel for contiguous fp32).
at::Tensor as_operand(const at::Tensor& x, bool bf16) {
  if (!bf16 || x.scalar_type() == at::kBFloat16) return x;
  return fused_cpu_applies(x) && x.is_contiguous() ? fused_to_bf16(x) : x.to(at::kBFloat16);
}

struct Block {
  int64_t qs, n, keys;  // query rows [qs, qs + n), keys [0, keys)
};

// Scores and probabilities of one block: qb [X, g, n, D], kb [X, 1, keys, D] (X = B * nkv),
// mb [B, 1, n, keys]. p is [X, g, n, keys], which is [B, nh, n, keys] in memory.
struct Probs {
  at::Tensor capped;  // tanh(q k^T * scale / cap) under soft-capping (for backward), else undefined
  at::Tensor p;       // softmax in fp32
};

Probs block_probs(const at::Tensor& qb, const at::Tensor& kb, const at::Tensor& mb, int64_t B, int64_t nh, double scale,
                  double cap) {
  const int64_t n = qb.size(2), keys = kb.size(2);
  Probs r;
  at::Tensor s;
  if (cap > 0) {
    r.capped = at::tanh(mm4(qb, kb.transpose(2, 3), scale / cap));
    s = r.capped * cap;
  } else {
    s = mm4(qb, kb.transpose(2, 3), scale);  // [X, g, n, keys]
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

// x [B, h, L, D] (contiguous) as [B * nkv, h / nkv, L, D]: query heads grouped under their kv head
// (h = nh), or each kv head alone (h = nkv: [B * nkv, 1, L, D], broadcast over the group).
at::Tensor grouped(const at::Tensor& x, int64_t nkv) {
  return x.view({x.size(0) * nkv, x.size(1) / nkv, x.size(2), x.size(3)});
}

// Rows [s, s + n) of a grouped [X, g, L, D] as one [X, g * n, D] matrix per kv head (a copy of
// n * D-float runs), for the products that sum over the group's heads (dK, dV).
at::Tensor flat_rows(const at::Tensor& x4, int64_t s, int64_t n) {
  return x4.narrow(2, s, n).contiguous().view({x4.size(0), x4.size(1) * n, x4.size(3)});
}

struct BlockedAttentionFn : public torch::autograd::Function<BlockedAttentionFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                            const at::Tensor& mask, double scale, double cap, int64_t block_rows, bool bf16) {
    // bf16: the operands rounded once here; what backward keeps too.
    const at::Tensor q = as_operand(q_in.contiguous(), bf16), k = as_operand(k_in.contiguous(), bf16),
                     v = as_operand(v_in.contiguous(), bf16);
    const int64_t B = q.size(0), nh = q.size(1), T = q.size(2), S = k.size(2), D = q.size(3), nkv = k.size(1);
    auto out = at::empty({B, nh, T, D}, q_in.options());
    const auto q4 = grouped(q, nkv), k4 = grouped(k, nkv), v4 = grouped(v, nkv), o4 = grouped(out, nkv);
    for (const Block& b : blocks(B * nh, T, S, block_rows)) {
      auto kb = k4.narrow(2, 0, b.keys), vb = v4.narrow(2, 0, b.keys);  // [X, 1, keys, D]
      Probs pr = block_probs(q4.narrow(2, b.qs, b.n), kb, mask.narrow(2, b.qs, b.n).narrow(3, 0, b.keys), B, nh, scale, cap);
      mm4_into(o4.narrow(2, b.qs, b.n), as_operand(pr.p, bf16).to(vb.scalar_type()), vb, 1.0, false);  // [X, g, n, D]
    }
    ctx->save_for_backward({q, k, v, mask});
    ctx->saved_data["bf16"] = bf16;
    ctx->saved_data["dtype"] = static_cast<int64_t>(q_in.scalar_type());
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["cap"] = cap;
    ctx->saved_data["rows"] = block_rows;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto sv = ctx->get_saved_variables();
    const at::Tensor &q = sv[0], &k = sv[1], &v = sv[2], &mask = sv[3];
    const double scale = ctx->saved_data["scale"].toDouble(), cap = ctx->saved_data["cap"].toDouble();
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());  // of q, k, v and their gradients
    const int64_t B = q.size(0), nh = q.size(1), T = q.size(2), S = k.size(2), D = q.size(3), nkv = k.size(1);
    const at::Tensor dout = as_operand(grads[0].contiguous(), bf16);  // [B, nh, T, D]
    // dq: every row is written by its block. dk, dv at the kv heads: the group's sum is the
    // GEMMs' own (they run over the group's rows together).
    const auto gopt = q.options().dtype(dtype);
    auto dq = at::empty({B, nh, T, D}, gopt), dk = at::zeros({B * nkv, S, D}, gopt), dv = at::zeros({B * nkv, S, D}, gopt);
    const auto q4 = grouped(q, nkv), k4 = grouped(k, nkv), v4 = grouped(v, nkv), do4 = grouped(dout, nkv), dq4 = grouped(dq, nkv);
    const int64_t X = B * nkv, g = nh / nkv;
    for (const Block& b : blocks(B * nh, T, S, ctx->saved_data["rows"].toInt())) {
      auto kb = k4.narrow(2, 0, b.keys), vb = v4.narrow(2, 0, b.keys);  // [X, 1, keys, D]
      auto qb = q4.narrow(2, b.qs, b.n), dob = do4.narrow(2, b.qs, b.n);  // [X, g, n, D]
      Probs pr = block_probs(qb, kb, mask.narrow(2, b.qs, b.n).narrow(3, 0, b.keys), B, nh, scale, cap);
      const auto& p = pr.p;                                           // [X, g, n, keys]
      const auto p3 = p.view({X, g * b.n, b.keys}).transpose(1, 2);  // [X, keys, g*n]
      const auto dof = flat_rows(do4, b.qs, b.n);                     // [X, g*n, D]
      mm4_into(dv.narrow(1, 0, b.keys), bf16 ? as_operand(p, true).view({X, g * b.n, b.keys}).transpose(1, 2) : p3.to(dof.scalar_type()),
               dof, 1.0, true);  // += p^T dO
      auto dp = mm4(dob, vb.transpose(2, 3)).to(at::kFloat);                      // [X, g, n, keys]
      auto ds = dp;  // p * (dP - rowsum(p * dP)), in dP's buffer
      if (fused_cpu_applies(ds) && ds.is_contiguous() && p.is_contiguous()) fused_softmax_backward_lastdim_(ds, p);
      else ds.sub_((p * dp).sum(-1, true)).mul_(p);
      if (cap > 0) ds.mul_(1.0 - pr.capped.square());
      ds = bf16 ? as_operand(ds, true) : ds.to(q.scalar_type());
      mm4_into(dq4.narrow(2, b.qs, b.n), ds, kb, scale, false);
      const auto ds3 = ds.view({X, g * b.n, b.keys}).transpose(1, 2);                // [X, keys, g*n]
      mm4_into(dk.narrow(1, 0, b.keys), ds3, flat_rows(q4, b.qs, b.n), scale, true);  // += dS^T Q * scale
    }
    return {dq, dk.view({B, nkv, S, D}), dv.view({B, nkv, S, D}), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, double scale,
                             double softcap, int64_t block_rows, bool bf16) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(1) > 0 && q.size(1) % k.size(1) == 0 &&
                  k.sizes() == v.sizes() && q.size(3) == k.size(3),
              "blocked attention: q [B, nh, T, D], k and v [B, nkv, S, D] with nkv dividing nh");
  TORCH_CHECK(mask.dim() == 4 && mask.size(2) == q.size(2) && mask.size(3) == k.size(2), "blocked attention: mask [B, 1, T, S]");
  return BlockedAttentionFn::apply(q, k, v, mask, scale, softcap, block_rows, bf16 && fused_cpu_applies(q) && fused_cpu_applies(k) &&
                                                                                fused_cpu_applies(v));
}

}  // namespace hone
