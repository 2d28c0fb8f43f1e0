// The frozen linear layer over oneDNN GEMMs and the base_dtype policy (see bf16_gemm.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/bf16_gemm.h"

#include "common/error.h"
#include "model/cpu_gemm.h"

#include <torch/autograd.h>

#include <cstdio>

namespace hone {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FrozenLinearFn : public torch::autograd::Function<FrozenLinearFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
    auto x2 = x.reshape({-1, x.size(-1)});                                    // [M, K]
    auto y = gemm_f32(x2, w.t());                                          // [M, N]
    if (bias.numel() > 0) y.add_(bias.to(at::kFloat));
    ctx->save_for_backward({w});
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    auto sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor w = ctx->get_saved_variables()[0];
    const auto xs = ctx->saved_data["x_sizes"].toIntVector();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    auto g2 = grads[0].reshape({-1, w.size(0)});                             // [M, N]
    return {gemm_f32(g2, w).view(xs), at::Tensor(), at::Tensor()};         // [M, K]
  }
};

}  // namespace

bool frozen_linear_applies(const at::Tensor& x, const at::Tensor& w) {
  if (w.requires_grad() || x.scalar_type() != at::kFloat) return false;
  if (w.scalar_type() == at::kBFloat16) return true;
  return w.scalar_type() == at::kFloat && x.device().is_cpu() && w.device().is_cpu() && onednn_f32_gemm();
}

at::Tensor frozen_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  TORCH_CHECK(!w.requires_grad() && (!bias.defined() || !bias.requires_grad()),
              "frozen_linear: the weight must be frozen (a bf16-stored one is for LoRA and QLoRA)");
  if (!x.requires_grad() || !at::GradMode::is_enabled()) {
    at::NoGradGuard ng;
    auto y = gemm_f32(x.reshape({-1, x.size(-1)}), w.t());
    if (bias.defined()) y.add_(bias.to(at::kFloat));
    auto sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }
  // apply() reads every tensor argument's device: "no bias" travels as an empty tensor.
  return FrozenLinearFn::apply(x, w, bias.defined() ? bias : at::empty({0}, x.options()));
}

BaseDtypeChoice resolve_base_dtype(const std::string& requested, const std::string& method, bool cuda, int64_t base_fp32_bytes) {
  char buf[32];  // small test and demo models would read "0 MB"
  if (base_fp32_bytes < (10LL << 20)) std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(base_fp32_bytes) / (1 << 20));
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(base_fp32_bytes >> 20));
  const std::string mb = std::string(buf) + " MB in fp32";
  if (method == "full") {
    if (requested == "bf16") throw Error("base_dtype bf16 needs a frozen base (lora or qlora), not full fine-tuning");
    return {false, "f32 (full fine-tuning trains every weight)"};
  }
  if (requested == "f32") return {false, "f32 (as configured)"};
  if (requested == "bf16") return {true, "bf16 (as configured; GEMMs: " + cpu_gemm_describe() + ")"};
  if (cuda) return {false, "f32 storage (auto: on CUDA autocast runs the GEMMs in bf16)"};
  // Without a bf16 unit a LoRA base widened per GEMM on AVX-512 costs no speed (Ice Lake, 2 cores:
  // 81.8/82.9, 84.4/83.7, 76.7/77.5 tokens/s bf16/f32 at the Qwen2.5-0.5B shape; peak 1.85 against
  // 3.10 GB). QLoRA's NF4 layers would go through bf16 to fp32 there, a pass more: unmeasured, f32.
  if (!onednn_bf16_gemm() && !(method == "lora" && bf16_widened_at_f32_speed()))
    return {false, "f32 (auto: " + cpu_gemm_describe() + ")"};
  if (base_fp32_bytes < (256LL << 20)) return {false, "f32 (auto: the base is only " + mb + ")"};
  return {true, "bf16 (auto: " + cpu_gemm_describe() + ", base " + mb + ")"};
}

}  // namespace hone
