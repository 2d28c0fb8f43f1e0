// Llama-family decoder forward pass, following transformers' modeling_{llama,mistral,qwen2,gemma}
// semantics: RMSNorm in fp32, rotate-half RoPE, GQA by repeating k/v heads, softmax in fp32,
// additive mask with the dtype's lowest value (so fully padded rows stay finite).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/decoder.h"
#include <ATen/record_function.h>

#include "model/blocked_attention.h"
#include "model/seeded_dropout.h"

#include "common/error.h"

#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>

#include <mutex>

#include "model/bf16_gemm.h"
#include "model/small_gemm.h"
#include "model/cpu_gemm.h"
#include "model/fused_cpu.h"
#include "model/rope.h"

namespace hone {

RMSNormImpl::RMSNormImpl(int64_t dim, double e, float off) : eps(e), offset(off) {
  weight = register_parameter("weight", off != 0.f ? at::zeros({dim}) : at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  RECORD_FUNCTION("hone::norm", std::vector<c10::IValue>());
  if (fused && offset == 0.f && fused_cpu_applies(x) && weight.scalar_type() == at::kFloat) return fused_rms_norm(x, weight, eps);
  auto xf = x.to(at::kFloat);
  auto normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (offset != 0.f) return (normed * (weight.to(at::kFloat) + offset)).to(x.scalar_type());  // Gemma
  return weight * normed.to(x.scalar_type());
}

EmbeddingImpl::EmbeddingImpl(int64_t vocab, int64_t dim) { weight = register_parameter("weight", at::empty({vocab, dim})); }

AttentionImpl::AttentionImpl(const ModelConfig& c)
    : n_heads(c.num_heads),
      n_kv(c.num_kv_heads),
      head_dim(c.head_dim),
      scale(c.query_scale > 0 ? c.query_scale : 1.0 / std::sqrt(static_cast<double>(c.head_dim))),
      softcap(c.attn_softcap) {
  if (c.arch->fused_proj) {
    qkv_proj = register_module("qkv_proj", Linear(c.hidden_size, c.q_dim() + 2 * c.kv_dim(), c.qkv_bias));
  } else {
    q_proj = register_module("q_proj", Linear(c.hidden_size, c.q_dim(), c.qkv_bias));
    k_proj = register_module("k_proj", Linear(c.hidden_size, c.kv_dim(), c.qkv_bias));
    v_proj = register_module("v_proj", Linear(c.hidden_size, c.kv_dim(), c.qkv_bias));
  }
  o_proj = register_module("o_proj", Linear(c.q_dim(), c.hidden_size, c.o_bias));
  if (c.arch->qk_norm) {  // Gemma 3's are (1 + w) norms like its others
    qk_norm_whole = c.arch->qk_norm_whole;
    q_norm = register_module("q_norm", RMSNorm(qk_norm_whole ? c.q_dim() : c.head_dim, c.rms_norm_eps, c.arch->norm_weight_offset));
    k_norm = register_module("k_norm", RMSNorm(qk_norm_whole ? c.kv_dim() : c.head_dim, c.rms_norm_eps, c.arch->norm_weight_offset));
  }
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& mask, KVCache* cache, size_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  at::Tensor q, k, v;
  if (qkv_proj) {  // Phi-3: [B,T,(nh+2nkv)*D] split into q | k | v
    auto qkv = qkv_proj->forward(x);
    const int64_t qd = n_heads * head_dim, kd = n_kv * head_dim;
    q = qkv.narrow(-1, 0, qd).reshape({B, T, n_heads, head_dim});
    k = qkv.narrow(-1, qd, kd).reshape({B, T, n_kv, head_dim});
    v = qkv.narrow(-1, qd + kd, kd).reshape({B, T, n_kv, head_dim});
  } else if (qk_norm_whole) {  // OLMo 2: q and k normalised over the whole projection, then split
    q = q_norm->forward(q_proj->forward(x)).view({B, T, n_heads, head_dim});  // [B,T,nh,D]
    k = k_norm->forward(k_proj->forward(x)).view({B, T, n_kv, head_dim});     // [B,T,nkv,D]
    v = v_proj->forward(x).view({B, T, n_kv, head_dim});                      // [B,T,nkv,D]
  } else {
    q = q_proj->forward(x).view({B, T, n_heads, head_dim});  // [B,T,nh,D]
    k = k_proj->forward(x).view({B, T, n_kv, head_dim});     // [B,T,nkv,D]
    v = v_proj->forward(x).view({B, T, n_kv, head_dim});     // [B,T,nkv,D]
  }
  if (q_norm && !qk_norm_whole) {  // Qwen3, Gemma 3: each head normalised over D, before RoPE
    q = q_norm->forward(q);
    k = k_norm->forward(k);
  }
  q = q.transpose(1, 2);  // [B,nh,T,D]
  k = k.transpose(1, 2);  // [B,nkv,T,D]
  v = v.transpose(1, 2);  // [B,nkv,T,D]
  // The fused RoPE returns contiguous [B,nh,T,D]: the reshapes for the GEMMs below are then views.
  {
    RECORD_FUNCTION("hone::rope", std::vector<c10::IValue>());
    q = fused && fused_cpu_applies(q) ? fused_rope(q, cos, sin) : apply_rope(q, cos, sin);
    k = fused && fused_cpu_applies(k) ? fused_rope(k, cos, sin) : apply_rope(k, cos, sin);
  }
  if (cache) {
    cache->append(layer, k, v);
    k = cache->k[layer];  // [B,nkv,S,D], a view of the cache's buffer
    v = cache->v[layer];
  }
  const int64_t S = k.size(2);
  // Blocked attention keeps no [nh, T, S] probabilities for backward: every pass of more than one
  // position, over a cache or not (a prefill; preference pairs continuing from their shared prompt,
  // train/logps.h, whose policy and reference passes then compute alike). Decoding one position a
  // step takes the grouped path below.
  if (blocked && (!cache || T > 1)) {  // k and v stay at n_kv heads (blocked_attention repeats them per block)
    at::Tensor o;
    {
      RECORD_FUNCTION("hone::attention", std::vector<c10::IValue>());
      const bool b16 = bf16 && o_proj->bf16_stored() && onednn_bf16_gemm() && fused_cpu_applies(q) && fused_cpu_applies(k);
      o = blocked_attention(q, k, v, mask, scale, softcap, 0, b16);  // [B,nh,T,D]
    }
    return o_proj->forward(o.transpose(1, 2).reshape({B, T, n_heads * head_dim}));  // [B,T,nh*D]
  }
  // Grouped-query attention without repeating keys and values per query head: the rep = nh/nkv
  // query heads sharing a kv head are consecutive, so q [B,nh,T,D] is [B,nkv,rep*T,D] and each kv
  // head takes one GEMM against all its queries (decoding read the cache rep times over before).
  const int64_t rep = n_heads / n_kv, G = B * n_kv;
  auto qg = q.reshape({G, rep * T, head_dim});                          // [B*nkv, rep*T, D]
  auto kt = k.reshape({G, S, head_dim}).transpose(1, 2);                // [B*nkv, D, S]
  auto m = mask.to(q.scalar_type()).unsqueeze(1).expand({B, n_kv, rep, T, S}).reshape({G, rep * T, S});
  at::Tensor scores;                                                    // [B*nkv, rep*T, S]
  if (softcap > 0) {  // Gemma 2 caps the scores before the mask is added
    scores = at::bmm(qg, kt) * scale;
    scores = at::tanh(scores / softcap) * softcap + m;
  } else {
    scores = at::baddbmm(m, qg, kt, 1.0, scale);  // mask + scale * q k^T in one batched GEMM
  }
  auto probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  auto out = at::bmm(probs, v.reshape({G, S, head_dim}))                 // [B*nkv, rep*T, D]
                 .view({B, n_heads, T, head_dim})
                 .transpose(1, 2)
                 .reshape({B, T, n_heads * head_dim});  // [B,T,nh*D]
  return o_proj->forward(out);
}

void KVCache::append(size_t layer, const at::Tensor& k_new, const at::Tensor& v_new) {
  if (k.size() <= layer) {
    k.resize(layer + 1);
    v.resize(layer + 1);
  }
  if (k_buf.size() <= layer) {
    k_buf.resize(layer + 1);
    v_buf.resize(layer + 1);
  }
  const int64_t S = k[layer].defined() ? k[layer].size(2) : 0, T = k_new.size(2);
  if (at::GradMode::is_enabled() && (k_new.requires_grad() || v_new.requires_grad())) {
    // Under autograd a buffer written in place would change what earlier steps saved: new tensors.
    k[layer] = S > 0 ? at::cat({k[layer], k_new}, 2) : k_new;
    v[layer] = S > 0 ? at::cat({v[layer], v_new}, 2) : v_new;
    k_buf[layer] = v_buf[layer] = at::Tensor();
    return;
  }
  // The views are still those of the buffer (no caller replaced them) and there is room: in place.
  const bool ours = k_buf[layer].defined() && k[layer].defined() && k[layer].data_ptr() == k_buf[layer].data_ptr() &&
                    v[layer].data_ptr() == v_buf[layer].data_ptr() && k_buf[layer].size(0) == k_new.size(0);
  if (!ours || S + T > k_buf[layer].size(2)) {
    const int64_t cap = std::max({S + T, reserve, ours ? 2 * k_buf[layer].size(2) : int64_t{0}});
    auto sizes = k_new.sizes().vec();
    sizes[2] = cap;
    at::Tensor kb = at::empty(sizes, k_new.options()), vb = at::empty(sizes, v_new.options());
    if (S > 0) {
      kb.narrow(2, 0, S).copy_(k[layer]);
      vb.narrow(2, 0, S).copy_(v[layer]);
    }
    k_buf[layer] = kb;
    v_buf[layer] = vb;
  }
  k_buf[layer].narrow(2, S, T).copy_(k_new);
  v_buf[layer].narrow(2, S, T).copy_(v_new);
  k[layer] = k_buf[layer].narrow(2, 0, S + T);  // [B,nkv,S+T,D]
  v[layer] = v_buf[layer].narrow(2, 0, S + T);
}

namespace {

// act(g) * u keeping only g and u for backward (act(g) is recomputed there): the plain ops keep
// g, act(g) and u, one [T, ffn] tensor more per layer (10 MB at T 512 for Qwen2.5-0.5B's 4864).
// keep16 (a bf16 base, SwiGLU on fp32 CPU tensors): g and u are kept rounded to bf16, written in
// the forward's pass, half the bytes (240 MB less at that shape). The product itself is computed
// from the fp32 values, so the forward and the loss are unchanged; backward reads the roundings.
// The roundings are returned as two more outputs (no gradient) for the down adapter's
// GatedLoraAFn, which keeps the same tensors.
struct GatedActFn : public torch::autograd::Function<GatedActFn> {
  static at::Tensor act_of(const at::Tensor& g, int64_t kind) {
    return kind == 0 ? at::silu(g) : kind == 1 ? at::gelu(g, "tanh") : at::gelu(g);
  }
  // SwiGLU on contiguous fp32 CPU tensors runs the one-pass kernels (fused_cpu.h): at::silu and
  // silu_backward ran at 7 ns per element here (no vectorized exp in Debian's libtorch).
  static bool swiglu_kernel(const at::Tensor& g, const at::Tensor& u, int64_t kind) {
    return kind == 0 && fused_cpu_applies(g) && fused_cpu_applies(u) && g.is_contiguous() && u.is_contiguous();
  }
  // What backward may read: the fp32 pair above or its kept bf16 roundings.
  static bool kept_kernel(const at::Tensor& g, const at::Tensor& u, int64_t kind) { return kind == 0 && swiglu_operands(g, u); }
  static bool keeps_bf16(const at::Tensor& g, const at::Tensor& u, int64_t kind, bool keep16) {
    return keep16 && swiglu_kernel(g, u, kind) && at::GradMode::is_enabled() && (g.requires_grad() || u.requires_grad());
  }
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& g, const at::Tensor& u,
                                                int64_t kind, bool keep16) {
    ctx->saved_data["kind"] = kind;
    if (keep16 && swiglu_kernel(g, u, kind)) {
      auto [a, g16, u16] = fused_swiglu_keep_bf16(g, u);
      ctx->saved_data["g16"] = g16;
      ctx->saved_data["u16"] = u16;
      ctx->mark_non_differentiable({g16, u16});
      ctx->set_materialize_grads(false);  // else backward gets zero-filled gradients for g16 and u16
      return {a, g16, u16};
    }
    ctx->save_for_backward({g, u});
    return {swiglu_kernel(g, u, kind) ? fused_swiglu(g, u) : act_of(g, kind) * u};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const int64_t kind = ctx->saved_data["kind"].toInt();
    at::Tensor g, u;
    if (ctx->saved_data.count("g16")) {
      g = ctx->saved_data["g16"].toTensor();
      u = ctx->saved_data["u16"].toTensor();
    } else {
      auto s = ctx->get_saved_variables();
      g = s[0];
      u = s[1];
    }
    const at::Tensor& d = grads[0];
    if (!d.defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    if (kept_kernel(g, u, kind) && fused_cpu_applies(d)) {
      auto [dg, du] = fused_swiglu_backward(d, g, u);
      return {dg, du, at::Tensor(), at::Tensor()};
    }
    if (g.scalar_type() == at::kBFloat16) g = g.to(at::kFloat), u = u.to(at::kFloat);  // kept roundings, a non-fp32 d
    const at::Tensor da = d * u;
    at::Tensor dg = kind == 0 ? at::silu_backward(da, g) : at::gelu_backward(da, g, kind == 1 ? "tanh" : "none");
    return {dg, d * act_of(g, kind), at::Tensor(), at::Tensor()};
  }
};

// low = (act(g) * u) A^T for the down projection's LoRA branch, keeping g and u (which SwiGLU's
// backward keeps anyway) instead of their product: backward recomputes the product (one fused
// pass) for dA = dlow^T (act(g) * u). The frozen base GEMM keeps nothing of its input, so the
// [T, ffn] product is no longer held for backward: 10 MB per layer at T 512 on Qwen2.5-0.5B's
// shape, 239 MB over its 24 layers. a is the product itself (GatedActFn's output), an input so
// that da = dlow A flows back through SwiGLU's backward with the base's gradient.
struct GatedLoraAFn : public torch::autograd::Function<GatedLoraAFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& A, const at::Tensor& g,
                            const at::Tensor& u, int64_t kind, double p, int64_t seed) {
    ctx->save_for_backward({A});
    ctx->saved_data["g"] = g.detach();
    ctx->saved_data["u"] = u.detach();
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["p"] = p;  // the adapter's dropout, its mask made again from the seed in backward
    ctx->saved_data["seed"] = seed;
    return matmul_f32(p > 0 ? seeded_dropout(a, static_cast<uint64_t>(seed), p) : a, A.t());  // [.., r]
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const at::Tensor A = ctx->get_saved_variables()[0];
    const at::Tensor g = ctx->saved_data["g"].toTensor(), u = ctx->saved_data["u"].toTensor();
    const int64_t kind = ctx->saved_data["kind"].toInt();
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    at::Tensor a = (GatedActFn::kept_kernel(g, u, kind) ? fused_swiglu(g, u) : GatedActFn::act_of(g, kind) * u).contiguous();
    if (p > 0) seeded_dropout_(a, seed, p);  // a fresh tensor: dropped in place
    const at::Tensor& d = grads[0];  // [.., r]
    const int64_t r = A.size(0), I = A.size(1);
    at::Tensor dA = matmul_f32(d.reshape({-1, r}).t(), a.reshape({-1, I}));  // [r, I]
    at::Tensor da = matmul_f32(d, A);                                         // [.., I]
    if (p > 0) seeded_dropout_(da, seed, p);
    return {da, dA, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// a = act(g) * u, and low = a A^T for the down projection's adapter when A is not empty, keeping g
// and the up projection's input x but not u: backward runs the up projection on x again (under
// the adapter it ran with) for u, then a. u stays an input so that du flows back through the up
// projection's own graph. Saves a [T, ffn] tensor per layer (with GatedLoraAFn's saving, two of
// SwiGLU's three) for one more GEMM of the up projection's size.
struct RecomputedUpFn : public torch::autograd::Function<RecomputedUpFn> {
  // rng: the dropout generator's state just before the up projection ran (empty when its adapter
  // has no dropout), restored for the recompute so that its adapter draws the same mask; p, seed:
  // the down projection adapter's dropout.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& g, const at::Tensor& u,
                                                const at::Tensor& A, const at::Tensor& x, int64_t up_addr, int64_t kind,
                                                const at::Tensor& rng, double p, int64_t seed, bool keep16) {
    ctx->save_for_backward({A});
    // keep16 (a bf16 base): g kept rounded to bf16, widened again in backward.
    ctx->saved_data["g"] = keep16 && fused_cpu_applies(g) && g.is_contiguous() ? fused_to_bf16(g) : g.detach();
    ctx->saved_data["x"] = x.detach();
    ctx->saved_data["up"] = up_addr;
    ctx->saved_data["critic"] = reinterpret_cast<LinearImpl*>(up_addr)->use_critic;
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["rng"] = rng;
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    at::Tensor a = GatedActFn::swiglu_kernel(g, u, kind) ? fused_swiglu(g, u) : GatedActFn::act_of(g, kind) * u;
    if (A.numel() == 0) return {a};  // no adapter on the down projection: a alone
    return {a, matmul_f32(p > 0 ? seeded_dropout(a, static_cast<uint64_t>(seed), p) : a, A.t())};  // a, low [.., r]
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const at::Tensor A = ctx->get_saved_variables()[0];
    at::Tensor g = ctx->saved_data["g"].toTensor();
    const at::Tensor x = ctx->saved_data["x"].toTensor();
    if (g.scalar_type() == at::kBFloat16) g = fused_from_bf16(g);
    const int64_t kind = ctx->saved_data["kind"].toInt();
    auto* up = reinterpret_cast<LinearImpl*>(ctx->saved_data["up"].toInt());
    at::Tensor u;
    {
      at::NoGradGuard ng;
      const bool critic_now = up->use_critic;
      up->use_critic = ctx->saved_data["critic"].toBool();
      const at::Tensor rng = ctx->saved_data["rng"].toTensor();
      auto gen = dropout_generator(x);
      at::Tensor now;
      if (rng.numel() > 0) {
        std::lock_guard<std::mutex> lk(gen.mutex());
        now = gen.get_state();
        gen.set_state(rng);
      }
      u = up->forward(x);
      if (rng.numel() > 0) {
        std::lock_guard<std::mutex> lk(gen.mutex());
        gen.set_state(now);
      }
      up->use_critic = critic_now;
    }
    at::Tensor da = grads[0].defined() ? grads[0] : at::zeros_like(g);
    at::Tensor dA;
    if (A.numel() > 0 && grads.size() > 1 && grads[1].defined()) {
      const at::Tensor& dlow = grads[1];  // [.., r]
      const double p = ctx->saved_data["p"].toDouble();
      const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
      at::Tensor a = (GatedActFn::swiglu_kernel(g, u, kind) ? fused_swiglu(g, u) : GatedActFn::act_of(g, kind) * u).contiguous();
      if (p > 0) seeded_dropout_(a, seed, p);
      dA = matmul_f32(dlow.reshape({-1, A.size(0)}).t(), a.reshape({-1, A.size(1)}));  // [r, I]
      at::Tensor dlow_a = matmul_f32(dlow, A);                                          // [.., I]
      if (p > 0) seeded_dropout_(dlow_a, seed, p);
      da = da + dlow_a;
    }
    at::Tensor dg, du;
    if (GatedActFn::swiglu_kernel(g, u, kind) && fused_cpu_applies(da) && da.is_contiguous()) {
      std::tie(dg, du) = fused_swiglu_backward(da, g, u);
    } else {
      const at::Tensor t = da * u;
      dg = kind == 0 ? at::silu_backward(t, g) : at::gelu_backward(t, g, kind == 1 ? "tanh" : "none");
      du = da * GatedActFn::act_of(g, kind);
    }
    return {dg, du, dA, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Dropout on the adapter is fine where it is seeded (fp32 CPU): the mask is made again in backward.
bool lora_branch_recomputable(const LinearImpl& l) {
  return l.has_lora() && l.lora_enabled && !l.lora_merged && !(l.use_critic && l.has_critic()) &&
         (l.lora_dropout == 0 || !l.is_training() || seeded_dropout_applies(l.lora_A->weight)) &&
         l.lora_A->weight.requires_grad();
}

// The adapter's dropout for this call and, when there is one, a seed for its mask.
std::pair<double, int64_t> branch_dropout(const LinearImpl& l, const at::Tensor& x) {
  const double p = l.is_training() ? l.lora_dropout : 0.0;
  return {p, p > 0 ? static_cast<int64_t>(draw_dropout_seed(x)) : 0};
}

// down(a) with the down projection's base alone (its adapter switched off for the call).
at::Tensor down_base(LinearImpl& down, const at::Tensor& a) {
  down.lora_enabled = false;
  at::Tensor y;
  try {
    y = down.forward(a);
  } catch (...) {
    down.lora_enabled = true;
    throw;
  }
  down.lora_enabled = true;
  return y;
}

// down(a) + scaling * low B^T, where low [.., r] = a A^T came from one of the functions above.
at::Tensor down_with_low(LinearImpl& down, const at::Tensor& a, const at::Tensor& low) {
  if (down.fused_lora && !down.quantized() && !down.observe && frozen_lora_applies(a, down.weight, low, down.lora_B->weight))
    return frozen_lora_linear(a, down.weight, down.bias, low, down.lora_B->weight, down.lora_scaling);  // one node
  return lora_add(down_base(down, a), low, down.lora_B->weight, down.lora_scaling);
}

// down(a) for a = act(g) * u: the LoRA branch through GatedLoraAFn where it applies (an enabled,
// unmerged policy adapter, its dropout seeded if it has one, while gradients are recorded), else
// the layer itself.
at::Tensor down_of_gated(LinearImpl& down, const at::Tensor& a, const at::Tensor& g, const at::Tensor& u, int64_t kind) {
  if (!lora_branch_recomputable(down) || !at::GradMode::is_enabled()) return down.forward(a);
  const auto [p, seed] = branch_dropout(down, a);
  return down_with_low(down, a, GatedLoraAFn::apply(a, down.lora_A->weight, g, u, kind, p, seed));
}

}  // namespace

MLPImpl::MLPImpl(const ModelConfig& c) : act(c.hidden_act) {
  if (c.arch->fused_proj) {
    gate_up_proj = register_module("gate_up_proj", Linear(c.hidden_size, 2 * c.intermediate_size, c.mlp_bias));
  } else {
    gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  }
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

at::Tensor MLPImpl::forward(const at::Tensor& x) {
  at::Tensor g, u;
  if (gate_up_proj) {  // Phi-3: [.., 2I] = gate | up
    auto gu = gate_up_proj->forward(x);
    const int64_t I = gu.size(-1) / 2;
    g = gu.narrow(-1, 0, I);
    u = gu.narrow(-1, I, I);
  } else {
    g = gate_proj->forward(x);
  }
  // The up projection runs again in backward (mlp_recompute): an adapter with dropout must draw
  // the same mask there, so the generator's state before it is kept (seeded dropout, fp32 CPU).
  const bool up_drops = up_proj && up_proj->has_lora() && up_proj->lora_dropout > 0 && !(up_proj->use_critic && up_proj->has_critic());
  const bool recompute = fused && recompute_up && up_proj && is_training() && at::GradMode::is_enabled() &&
                         (!up_drops || seeded_dropout_applies(x));
  at::Tensor rng = x.new_empty({0}, at::kByte);  // libtorch 1.13's Function takes no undefined tensor inputs
  if (recompute && up_drops) {
    auto gen = dropout_generator(x);
    std::lock_guard<std::mutex> lk(gen.mutex());
    rng = gen.get_state();
  }
  if (!u.defined()) u = up_proj->forward(x);
  // Over a bf16 base (its GEMMs round their inputs to bf16 already) backward keeps g and u (with
  // recompute_up, g alone) in bf16; the down adapter's recompute reads the same roundings.
  const bool bf16_base = gate_proj && gate_proj->bf16_stored() && up_proj->bf16_stored();
  if (fused) {
    const int64_t kind = act == "silu" ? 0 : act == "gelu_pytorch_tanh" ? 1 : 2;
    if (!recompute) {
      const bool keep16 = keep_bf16 && bf16_base && GatedActFn::keeps_bf16(g, u, kind, true);
      at::Tensor a, gk = g, uk = u;
      {
        RECORD_FUNCTION("hone::activation", std::vector<c10::IValue>());
        auto out = GatedActFn::apply(g, u, kind, keep16);
        a = out[0];
        if (out.size() == 3) gk = out[1], uk = out[2];
      }
      return down_of_gated(*down_proj, a, gk, uk, kind);
    }
    LinearImpl& down = *down_proj;
    const bool lora = lora_branch_recomputable(down);
    const auto [p, seed] = lora ? branch_dropout(down, x) : std::pair<double, int64_t>{0.0, 0};
    // No adapter: an empty A (libtorch 1.13's Function takes no undefined tensor inputs or outputs).
    auto out = RecomputedUpFn::apply(g, u, lora ? down.lora_A->weight : g.new_empty({0}), x,
                                     reinterpret_cast<int64_t>(up_proj.get()), kind, rng, p, seed, keep_bf16 && bf16_base);  // a, low
    if (!lora) return down.forward(out[0]);
    return down_with_low(down, out[0], out[1]);
  }
  at::Tensor a;
  if (act == "silu") a = at::silu(g);
  else if (act == "gelu_pytorch_tanh") a = at::gelu(g, "tanh");
  else a = at::gelu(g);
  return down_proj->forward(a * u);
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c) : residual_multiplier(c.residual_multiplier) {
  const float off = c.arch->norm_weight_offset;
  if (!c.arch->post_norms) input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, off));
  self_attn = register_module("self_attn", Attention(c));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, off));
  if (c.arch->post_norms)
    post_feedforward_layernorm = register_module("post_feedforward_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, off));
  if (c.arch->sandwich_norms) {
    pre_feedforward_layernorm = register_module("pre_feedforward_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, off));
    post_feedforward_layernorm = register_module("post_feedforward_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, off));
  }
  mlp = register_module("mlp", MLP(c));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& mask, KVCache* cache, size_t layer) {
  if (pre_feedforward_layernorm) {  // Gemma 2/3: each block's output is normalised before the residual add
    auto h = x + post_attention_layernorm->forward(self_attn->forward(input_layernorm->forward(x), cos, sin, mask, cache, layer));
    return h + post_feedforward_layernorm->forward(mlp->forward(pre_feedforward_layernorm->forward(h)));
  }
  if (!input_layernorm) {  // OLMo 2: the blocks read the residual stream as it is; their outputs are normalised
    auto h = x + post_attention_layernorm->forward(self_attn->forward(x, cos, sin, mask, cache, layer));
    return h + post_feedforward_layernorm->forward(mlp->forward(h));
  }
  if (residual_multiplier != 1.0) {  // Granite
    auto h = x + self_attn->forward(input_layernorm->forward(x), cos, sin, mask, cache, layer) * residual_multiplier;
    return h + mlp->forward(post_attention_layernorm->forward(h)) * residual_multiplier;
  }
  auto h = x + self_attn->forward(input_layernorm->forward(x), cos, sin, mask, cache, layer);
  return h + mlp->forward(post_attention_layernorm->forward(h));
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Which adapter a layer's projections run: the policy's or PPO's critic (model/linear.h). The
// recompute in a checkpointed backward must run the one its forward ran.
bool layer_uses_critic(DecoderLayerImpl* layer) {
  for (auto& m : layer->modules(/*include_self=*/false))
    if (auto* lin = dynamic_cast<LinearImpl*>(m.get())) return lin->use_critic;
  return false;
}
void set_layer_critic(DecoderLayerImpl* layer, bool on) {
  for (auto& m : layer->modules(/*include_self=*/false))
    if (auto* lin = dynamic_cast<LinearImpl*>(m.get())) lin->use_critic = on;
}

// Activation checkpointing of one decoder layer. The layer is passed by address: it outlives the
// backward pass of the step that created this node.
struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            const at::Tensor& mask, int64_t layer_addr) {
    ctx->save_for_backward({x, cos, sin, mask});
    ctx->saved_data["layer"] = layer_addr;
    ctx->saved_data["critic"] = layer_uses_critic(reinterpret_cast<DecoderLayerImpl*>(layer_addr));
    auto gen = dropout_generator(x);
    {
      std::lock_guard<std::mutex> lk(gen.mutex());
      ctx->saved_data["rng"] = gen.get_state();  // so that dropout repeats itself in the recompute
    }
    return reinterpret_cast<DecoderLayerImpl*>(layer_addr)->forward(x, cos, sin, mask, nullptr, 0);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto s = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    auto gen = dropout_generator(s[0]);
    at::Tensor now;
    {
      std::lock_guard<std::mutex> lk(gen.mutex());
      now = gen.get_state();
      gen.set_state(ctx->saved_data["rng"].toTensor());
    }
    auto x = s[0].detach().requires_grad_(true);
    at::Tensor out;
    {
      at::AutoGradMode enable(true);
      const bool critic_now = layer_uses_critic(layer);
      set_layer_critic(layer, ctx->saved_data["critic"].toBool());
      out = layer->forward(x, s[1], s[2], s[3], nullptr, 0);
      set_layer_critic(layer, critic_now);
    }
    {
      std::lock_guard<std::mutex> lk(gen.mutex());
      gen.set_state(now);
    }
    torch::autograd::backward({out}, {grad[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

BackboneImpl::BackboneImpl(const ModelConfig& c) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps, c.arch->norm_weight_offset));
}

CausalLMImpl::CausalLMImpl(const ModelConfig& c) : config(c) {
  model = register_module("model", Backbone(c));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Linear(c.hidden_size, c.vocab_size, false));
  inv_freq = rope_inv_freq(c);
  if (c.rope_local_theta > 0) {  // Gemma 3: windowed layers rotate with their own base and no scaling
    ModelConfig local = c;
    local.rope_theta = c.rope_local_theta;
    local.rope = RopeScaling();
    inv_freq_local = rope_inv_freq(local);
  }
  if (c.rope.type == "longrope") inv_freq_long = rope_inv_freq(c, /*long_factors=*/true);
}

void CausalLMImpl::set_fused_kernels(bool on) {
  fused_kernels = on;
  for (auto& l : *model->layers) {
    auto* d = l->as<DecoderLayerImpl>();
    d->self_attn->fused = on;
    d->mlp->fused = on;
    if (d->input_layernorm) d->input_layernorm->fused = on;
    d->post_attention_layernorm->fused = on;
    if (d->pre_feedforward_layernorm) d->pre_feedforward_layernorm->fused = on;
    if (d->post_feedforward_layernorm) d->post_feedforward_layernorm->fused = on;
    for (auto& mod : d->modules(false))
      if (auto* lin = dynamic_cast<LinearImpl*>(mod.get())) lin->fused_lora = on;
  }
  model->norm->fused = on;
}

void CausalLMImpl::set_mlp_recompute(bool on) {
  for (auto& l : *model->layers) l->as<DecoderLayerImpl>()->mlp->recompute_up = on;
}

void CausalLMImpl::mlp_keep_bf16(bool on) {
  for (auto& l : *model->layers) l->as<DecoderLayerImpl>()->mlp->keep_bf16 = on;
}

void CausalLMImpl::set_bf16_activations(bool on) {
  for (auto& l : *model->layers) {
    l->as<DecoderLayerImpl>()->mlp->keep_bf16 = on;
    l->as<DecoderLayerImpl>()->self_attn->bf16 = on;
  }
}

void CausalLMImpl::set_blocked_attention(bool on) {
  for (auto& l : *model->layers) l->as<DecoderLayerImpl>()->self_attn->blocked = on;
}

const at::Tensor& CausalLMImpl::output_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

at::Tensor CausalLMImpl::hidden(const at::Tensor& ids, const at::Tensor& attention_mask, KVCache* cache,
                                const at::Tensor& positions) {
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t past = cache ? cache->length() : 0;
  const int64_t S = past + T;
  const auto dev = ids.device();
  auto h = model->embed_tokens->forward(ids);  // [B,T,H]
  if (config.arch->embed_scale_sqrt_hidden) {
    // transformers casts the normalizer to the activation dtype before multiplying.
    auto norm = at::scalar_tensor(std::sqrt(static_cast<double>(config.hidden_size)), h.options());
    h = h * norm;
  }
  if (config.embedding_multiplier != 1.0) h = h * config.embedding_multiplier;  // Granite
  at::Tensor pos = positions.defined() ? positions : at::arange(past, S, at::TensorOptions(at::kLong).device(dev)).unsqueeze(0).expand({B, T});
  // longrope switches to its long factors once the sequence outgrows the original context, as
  // transformers does (the cache keeps keys rotated with the factors they were computed with).
  const bool long_rope = inv_freq_long.defined() && S > config.rope.original_max_position_embeddings;
  auto cs = rope_cos_sin((long_rope ? inv_freq_long : inv_freq).to(dev), pos);  // [B,T,D] each
  if (config.rope.type == "longrope" && config.rope.attention_factor != 1.0)
    cs = {cs.first * config.rope.attention_factor, cs.second * config.rope.attention_factor};
  std::pair<at::Tensor, at::Tensor> cs_local = cs;
  if (inv_freq_local.defined()) cs_local = rope_cos_sin(inv_freq_local.to(dev), pos);
  // SmolLM3's layers without RoPE: cos 1 and sin 0 rotate nothing.
  std::pair<at::Tensor, at::Tensor> cs_none;
  if (!config.rope_layers.empty()) cs_none = {at::ones_like(cs.first), at::zeros_like(cs.second)};

  // allowed[b, i, j]: query i (absolute past+i) may attend to key j. Windowed layers get their own
  // mask: every layer (Mistral, Phi-3) or those sliding_layers marks (Gemma 2/3).
  auto qi = at::arange(past, S, at::TensorOptions(at::kLong).device(dev)).view({T, 1});
  auto kj = at::arange(0, S, at::TensorOptions(at::kLong).device(dev)).view({1, S});
  const bool per_layer = !config.sliding_layers.empty();
  auto make_mask = [&](bool windowed) {
    auto allowed = kj <= qi;  // [T,S]
    if (windowed && config.sliding_window > 0) allowed = allowed.logical_and(kj > qi - config.sliding_window);
    auto allowed_b = allowed.unsqueeze(0).expand({B, T, S});
    if (attention_mask.defined()) {
      TORCH_CHECK(attention_mask.size(0) == B && attention_mask.size(1) == S, "attention_mask must be [B, cache+T]");
      allowed_b = allowed_b.logical_and(attention_mask.to(at::kBool).to(dev).unsqueeze(1));
    }
    const auto act_dtype = h.scalar_type();
    const double lowest = act_dtype == at::kFloat ? std::numeric_limits<float>::lowest() : -3.0e38;
    auto m = at::where(allowed_b, at::zeros({}, h.options().dtype(at::kFloat)), at::full({}, lowest, h.options().dtype(at::kFloat)))
                 .unsqueeze(1);  // [B,1,T,S]
    if (act_dtype == at::kBFloat16) m = m.clamp_min(-3.0e38).to(act_dtype);
    return m;
  };
  const at::Tensor mask = make_mask(!per_layer);
  const at::Tensor mask_local = per_layer ? make_mask(true) : mask;

  const bool ckpt = gradient_checkpointing && is_training() && at::GradMode::is_enabled() && !cache;
  // A checkpointed layer only joins the graph when its input requires grad; with a frozen
  // embedding (LoRA) it would not, and the adapters inside would get no gradient.
  if (ckpt && !h.requires_grad()) h.requires_grad_(true);
  for (size_t l = 0; l < model->layers->size(); ++l) {
    if (interrupt && interrupt()) throw Interrupted();
    auto* layer = model->layers[l]->as<DecoderLayerImpl>();
    const bool local = per_layer && config.sliding_layers[l];
    const bool nope = !config.rope_layers.empty() && !config.rope_layers[l];
    const auto& c = nope ? cs_none : local ? cs_local : cs;
    const auto& m = local ? mask_local : mask;
    if (ckpt) h = LayerCheckpoint::apply(h, c.first, c.second, m, reinterpret_cast<int64_t>(layer));
    else h = layer->forward(h, c.first, c.second, m, cache, l);
    if (interrupt && h.requires_grad()) {
      auto stop = interrupt;  // backward runs this layer's gradient after the hook returns
      h.register_hook([stop](const at::Tensor& g) {
        if (stop()) throw Interrupted();
        return g;
      });
    }
  }
  return model->norm->forward(h);
}

at::Tensor CausalLMImpl::logits_from_hidden(const at::Tensor& hidden_states) {
  const at::Tensor h = head_input(hidden_states);
  const at::Tensor& w = output_weight();
  auto logits = small_rows_linear_applies(h, w)  ? small_rows_linear(h, w, {})
                : frozen_linear_applies(h, w) ? frozen_linear(h, w, {})
                                              : at::linear(h, w).to(at::kFloat);
  if (config.final_softcap > 0) logits = at::tanh(logits / config.final_softcap) * config.final_softcap;  // Gemma 2
  return logits;
}

at::Tensor CausalLMImpl::forward(const at::Tensor& ids, const at::Tensor& attention_mask, KVCache* cache,
                                 const at::Tensor& positions) {
  return logits_from_hidden(hidden(ids, attention_mask, cache, positions));
}

int64_t store_base_bf16(CausalLM& m, bool keep_values) {
  at::NoGradGuard ng;
  int64_t bytes = 0;
  for (auto& item : m->named_modules()) {
    auto* l = dynamic_cast<LinearImpl*>(item.value().get());
    if (!l || item.key().find("lora_") != std::string::npos || item.key().find("critic_") != std::string::npos) continue;
    l->store_bf16(keep_values);
    if (item.key() != "lm_head" && !l->quantized()) bytes += l->weight.numel() * l->weight.element_size();
  }
  auto& e = *m->model->embed_tokens;
  if (!e.bf16_stored) {
    if (e.weight.requires_grad()) throw Error("a trainable embedding cannot be stored in bf16 (base_dtype bf16 is for LoRA and QLoRA)");
    e.weight.set_data(keep_values ? e.weight.to(at::kBFloat16) : at::empty_like(e.weight, e.weight.options().dtype(at::kBFloat16)));
    e.bf16_stored = true;
  }
  return bytes;
}

void init_weights(CausalLM& m, uint64_t seed, double std, double embed_std) {
  at::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m->named_parameters()) {
    const auto& name = p.key();
    if (name.find(".lora_") != std::string::npos) continue;  // adapters keep their own init
    auto& t = p.value();
    const bool is_norm = name.find("norm") != std::string::npos;
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) t.fill_(m->config.arch->norm_weight_offset != 0.f ? 0.0 : 1.0);
    else if (is_bias) t.zero_();
    else {
      const bool is_embed = name.find("embed_tokens") != std::string::npos;
      // In place: a temporary as large as the embedding doubled the peak RSS of small-model runs.
      // (at::normal of a size fills a new tensor with normal_, so the values are the same.)
      const double sd = is_embed && embed_std >= 0 ? embed_std : std;
      if (t.scalar_type() == at::kFloat) {
        t.normal_(0.0, sd, gen);
      } else {
        // A bf16-stored base: fp32 blocks of rows (about 16 MB) copied in, not one fp32 temporary
        // of the whole table (the embedding's set the peak of a bf16 run). ATen draws all of a
        // tensor's uniforms in order and transforms them 16 at a time, so blocks whose sizes are
        // multiples of 16 give the values one call would.
        const int64_t rows = t.size(0), per_row = std::max<int64_t>(1, t.numel() / std::max<int64_t>(rows, 1));
        const int64_t block = std::max<int64_t>(16, ((4LL << 20) / per_row) / 16 * 16);
        for (int64_t r = 0; r < rows; r += block) {
          auto dst = t.narrow(0, r, std::min(block, rows - r));
          dst.copy_(at::normal(0.0, sd, dst.sizes(), gen, at::TensorOptions(at::kFloat)));
        }
      }
    }
  }
}

}  // namespace hone
