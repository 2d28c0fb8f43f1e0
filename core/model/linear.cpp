// Linear layer with NF4 base storage and a LoRA branch.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/linear.h"
#include <ATen/record_function.h>

#include <cmath>

#include "common/error.h"
#include "model/bf16_gemm.h"
#include "model/cpu_gemm.h"
#include "model/small_gemm.h"
#include "model/seeded_dropout.h"
#include "model/nf4_bf16.h"

#include <torch/autograd.h>

namespace hone {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// low = drop(x) A^T, its gradients through oneDNN (the adapter's skinny GEMMs ran 3-5x slower on
// Debian's OpenBLAS: [512, 4864] x [4864, 16] 1.4 ms against 0.26 on the 2-core EPYC). With
// dropout p > 0 the mask comes from `seed` (model/seeded_dropout.h) and is made again in backward:
// only x, which its producer holds anyway, is kept, not the dropped copy and the mask.
struct LoraLowFn : public torch::autograd::Function<LoraLowFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& A, double p, int64_t seed) {
    ctx->save_for_backward({x, A});
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return matmul_f32(p > 0 ? seeded_dropout(x, static_cast<uint64_t>(seed), p) : x, A.t());  // [.., r]
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &x = s[0], &A = s[1];
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    const at::Tensor& dlow = grads[0];  // [.., r]
    at::Tensor dx, dA;
    if (ctx->needs_input_grad(0)) {
      dx = matmul_f32(dlow, A);  // [.., in]
      if (p > 0) seeded_dropout_(dx, seed, p);
    }
    if (ctx->needs_input_grad(1)) {
      const at::Tensor xd = p > 0 ? seeded_dropout(x, seed, p) : x;
      dA = gemm_f32(dlow.reshape({-1, A.size(0)}).t(), xd.reshape({-1, A.size(1)}));  // [r, in]
    }
    return {dx, dA, at::Tensor(), at::Tensor()};
  }
};

// y + scaling * low B^T, accumulated in oneDNN's GEMM; dy passes through to y unchanged.
struct LoraAddFn : public torch::autograd::Function<LoraAddFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, const at::Tensor& low, const at::Tensor& B, double scaling) {
    ctx->save_for_backward({low, B});
    ctx->saved_data["scaling"] = scaling;
    at::Tensor out = y.contiguous().clone();  // [.., out]
    at::Tensor o2 = out.view({-1, B.size(0)});
    gemm_f32_out(o2, low.reshape({-1, B.size(1)}), B.t(), scaling, true);
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &low = s[0], &B = s[1];
    const double scaling = ctx->saved_data["scaling"].toDouble();
    const at::Tensor& dy = grads[0];  // [.., out]
    at::Tensor dlow, dB;
    if (ctx->needs_input_grad(1)) {
      auto sizes = low.sizes().vec();
      dlow = gemm_f32(dy.reshape({-1, B.size(0)}), B, scaling).view(sizes);  // [.., r]
    }
    if (ctx->needs_input_grad(2)) dB = gemm_f32(dy.reshape({-1, B.size(0)}).t(), low.reshape({-1, B.size(1)}), scaling);  // [out, r]
    return {dy, dlow, dB, at::Tensor()};
  }
};

// See frozen_lora_linear. Backward: dx = dy W as frozen_linear's (dy rounded to bf16 for a bf16
// W), dlow = scaling dy B and dB = scaling dy^T low as LoraAddFn's.
struct FrozenLoraFn : public torch::autograd::Function<FrozenLoraFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& low, const at::Tensor& B, const at::Tensor& w,
                            const at::Tensor& bias, double scaling) {
    const int64_t N = w.size(0), r = B.size(1);
    auto x2 = x.reshape({-1, x.size(-1)});  // [M, K]
    at::Tensor out = at::empty({x2.size(0), N}, x.options());
    gemm_f32_out(out, low.reshape({-1, r}), B.t(), scaling, false);  // [M, N] = scaling low B^T
    gemm_f32_out(out, x2, w.t(), 1.0, true);                           // += x W^T
    if (bias.numel() > 0) out.add_(bias.to(at::kFloat));
    ctx->save_for_backward({low, B, w});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    return out.view(sizes);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &low = s[0], &B = s[1], &w = s[2];
    const double scaling = ctx->saved_data["scaling"].toDouble();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const at::Tensor dy = grads[0].reshape({-1, w.size(0)});  // [M, N]
    at::Tensor dx, dlow, dB;
    if (ctx->needs_input_grad(0)) dx = gemm_f32(dy, w).view(ctx->saved_data["x_sizes"].toIntVector());  // [.., K]
    if (ctx->needs_input_grad(1)) dlow = gemm_f32(dy, B, scaling).view(low.sizes());                  // [.., r]
    if (ctx->needs_input_grad(2)) dB = gemm_f32(dy.t(), low.reshape({-1, B.size(1)}), scaling);         // [N, r]
    return {dx, dlow, dB, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool frozen_lora_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& low, const at::Tensor& B) {
  return w.defined() && frozen_linear_applies(x, w) && onednn_f32_applies(low, B);
}

at::Tensor frozen_lora_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& low,
                              const at::Tensor& B, double scaling) {
  if (!frozen_lora_applies(x, w, low, B)) return lora_add(frozen_linear(x, w, bias), low, B, scaling);
  // apply() reads every tensor argument's device: "no bias" travels as an empty tensor.
  return FrozenLoraFn::apply(x, low, B, w, bias.defined() ? bias : at::empty({0}, x.options()), scaling);
}

at::Tensor lora_low(const at::Tensor& x, const at::Tensor& A, double dropout) {
  if (dropout > 0 && !seeded_dropout_applies(x)) return at::linear(at::dropout(x, dropout, true), A);
  if (dropout == 0 && !onednn_f32_applies(x, A)) return at::linear(x, A);
  // oneDNN's GEMMs, or seeded dropout (whose GEMMs fall back to ATen where oneDNN does not run).
  const int64_t seed = dropout > 0 ? static_cast<int64_t>(draw_dropout_seed(x)) : 0;
  return LoraLowFn::apply(x, A, dropout, seed);
}

at::Tensor lora_add(const at::Tensor& y, const at::Tensor& low, const at::Tensor& B, double scaling) {
  if (!onednn_f32_applies(low, B) || y.scalar_type() != at::kFloat) {
    // One GEMM with accumulate (no extra passes over y).
    auto y2 = at::addmm(y.reshape({-1, B.size(0)}), low.reshape({-1, low.size(-1)}), B.t(), 1.0, scaling);
    return y2.view(y.sizes());
  }
  return LoraAddFn::apply(y, low, B, scaling);
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", at::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", at::zeros({out}));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  if (observe) observe(x);
  const bool critic = use_critic && has_critic();
  if (critic && lora_merged) throw Error("the critic adapter cannot run over a merged policy adapter");
  const bool adapter = critic || (has_lora() && lora_enabled && !lora_merged);
  const double p = (!critic && is_training()) ? lora_dropout : 0.0;  // the adapter's dropout (the critic has none)
  if (adapter && fused_lora && !has_nf4_ && !small_rows_linear_applies(x, weight, bias) && frozen_linear_applies(x, weight)) {
    // The frozen base and the adapter in one node (frozen_lora_linear).
    at::Tensor low;
    {
      RECORD_FUNCTION("hone::lora", std::vector<c10::IValue>());
      low = lora_low(x, (critic ? critic_A : lora_A)->weight, p);  // [..., r]
    }
    RECORD_FUNCTION("hone::linear", std::vector<c10::IValue>());
    return frozen_lora_linear(x, weight, bias, low, (critic ? critic_B : lora_B)->weight, lora_scaling);
  }
  at::Tensor y;
  {
    // Scopes named for bench --profile's op classes (bench/profile_summary.py --classes); they cost
    // nothing unless a profiler records.
    RECORD_FUNCTION("hone::linear", std::vector<c10::IValue>());
    const bool bf16_nf4 = has_nf4_ && bf16_stored_ && x.scalar_type() == at::kFloat;
    y = bf16_nf4                                     ? nf4_linear_bf16(x, nf4_, bias)
        : has_nf4_                                   ? nf4_linear(x, nf4_, bias)
        : small_rows_linear_applies(x, weight, bias) ? small_rows_linear(x, weight, bias)
        : frozen_linear_applies(x, weight)           ? frozen_linear(x, weight, bias)
                                                     : at::linear(x, weight, bias);
  }
  if (adapter) {
    RECORD_FUNCTION("hone::lora", std::vector<c10::IValue>());
    auto low = lora_low(x, (critic ? critic_A : lora_A)->weight, p);  // [..., r]
    return lora_add(y, low, (critic ? critic_B : lora_B)->weight, lora_scaling);
  }
  return y;
}

void LinearImpl::quantize_nf4() {
  if (has_nf4_) return;
  if (lora_merged) throw Error("cannot quantize a layer with a merged LoRA adapter");
  nf4_ = nf4_quantize(weight);
  nf4_.codes = register_buffer("nf4_codes", nf4_.codes);
  nf4_.absmax_q = register_buffer("nf4_absmax_q", nf4_.absmax_q);
  nf4_.absmax_scale = register_buffer("nf4_absmax_scale", nf4_.absmax_scale);
  parameters_.erase("weight");
  weight = at::Tensor();
  has_nf4_ = true;
}

void LinearImpl::dequantize_nf4() {
  if (!has_nf4_) return;
  at::Tensor w = nf4_dequantize(nf4_);
  // The registered buffers cannot be unregistered; emptying them in place frees their memory.
  at::NoGradGuard ng;
  for (at::Tensor* b : {&nf4_.codes, &nf4_.absmax_q, &nf4_.absmax_scale}) b->set_();
  nf4_ = NF4Weight();
  has_nf4_ = false;
  bf16_stored_ = false;  // the dequantized weight is fp32
  weight = register_parameter("weight", w, /*requires_grad=*/false);
}

void LinearImpl::store_bf16(bool keep_values) {
  if (has_nf4_) {  // the 4-bit storage stays; its GEMMs run in bf16 (model/nf4_bf16.h)
    bf16_stored_ = true;
    return;
  }
  if (weight.scalar_type() == at::kBFloat16) return;
  if (weight.requires_grad()) throw Error("a trainable weight cannot be stored in bf16 (base_dtype bf16 is for LoRA and QLoRA)");
  if (lora_merged) throw Error("cannot store a layer with a merged LoRA adapter in bf16");
  at::NoGradGuard ng;
  // set_data keeps the registration; the fp32 storage is freed.
  weight.set_data(keep_values ? weight.to(at::kBFloat16) : at::empty_like(weight, weight.options().dtype(at::kBFloat16)));
  bf16_stored_ = true;
}

at::Tensor LinearImpl::dense_weight() const {
  at::NoGradGuard ng;
  return has_nf4_ ? nf4_dequantize(nf4_) : weight.detach();
}

void LinearImpl::add_lora(int64_t r, double alpha, double dropout, bool rslora, at::Generator& gen) {
  if (has_lora()) throw Error("layer already has a LoRA adapter");
  if (r <= 0) throw Error("LoRA rank must be positive");
  const auto opts = at::TensorOptions(at::kFloat);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));  // kaiming_uniform(a=sqrt(5))
  auto a = at::empty({r, in_features}, opts).uniform_(-bound, bound, gen);
  auto b = at::zeros({out_features, r}, opts);
  const auto dev = has_nf4_ ? nf4_.codes.device() : weight.device();
  const auto dt = has_nf4_ || bf16_stored_ ? at::kFloat : weight.scalar_type();  // adapters stay fp32 over a bf16 base
  lora_A = register_module("lora_A", LoraWeight(a.to(dev, dt)));
  lora_B = register_module("lora_B", LoraWeight(b.to(dev, dt)));
  lora_scaling = rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
  lora_dropout = dropout;
}

void LinearImpl::add_critic_lora() {
  if (!has_lora()) throw Error("a critic adapter needs the policy's adapter on the same layer");
  if (has_critic()) throw Error("layer already has a critic adapter");
  at::NoGradGuard ng;
  critic_A = register_module("critic_A", LoraWeight(lora_A->weight.detach().clone().set_requires_grad(true)));
  critic_B = register_module("critic_B", LoraWeight(lora_B->weight.detach().clone().set_requires_grad(true)));
}

void LinearImpl::merge_lora() {
  if (!has_lora() || lora_merged) return;
  if (has_nf4_) throw Error("merging into an NF4 base needs a dequantized copy: export the merged model instead");
  at::NoGradGuard ng;
  weight.add_(at::matmul(lora_B->weight, lora_A->weight) * lora_scaling);
  lora_merged = true;
}

void LinearImpl::unmerge_lora() {
  if (!has_lora() || !lora_merged) return;
  at::NoGradGuard ng;
  weight.sub_(at::matmul(lora_B->weight, lora_A->weight) * lora_scaling);
  lora_merged = false;
}

}  // namespace hone
