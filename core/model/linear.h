// The decoder's linear layer: a dense or NF4-quantized base weight, plus an optional LoRA branch
// (PEFT semantics) that can be switched off (the DPO reference model) or merged into the weight.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <functional>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "model/nf4.h"

namespace hone {

// Holder so that LoRA matrices are named "<linear>.lora_A.weight" as in PEFT files.
struct LoraWeightImpl : torch::nn::Module {
  explicit LoraWeightImpl(at::Tensor w) { weight = register_parameter("weight", std::move(w)); }
  at::Tensor weight;
};
TORCH_MODULE(LoraWeight);

struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out, bool bias);
  at::Tensor forward(const at::Tensor& x);  // y = base(x) + B(A(dropout(x))) * scaling

  at::Tensor weight, bias;  // weight [out, in] (undefined once quantized), bias [out]
  int64_t in_features, out_features;
  // Sees every input before the product (export calibration gathers activation statistics with
  // it); empty in training and generation.
  std::function<void(const at::Tensor& x)> observe;

  // QLoRA base: replaces `weight` with NF4 buffers; no full-precision copy is kept.
  void quantize_nf4();
  bool quantized() const { return has_nf4_; }
  const NF4Weight& nf4() const { return nf4_; }
  at::Tensor dense_weight() const;  // W, dequantized when NF4 (no grad)
  // Back to a dense weight holding the NF4 values (what QLoRA trained against), for merging/export.
  void dequantize_nf4();

  // bf16 base (base_dtype "bf16"): the frozen weight kept in bf16, its GEMMs accumulating in fp32
  // (model/bf16_gemm.h) while activations, adapters and their gradients stay fp32.
  // keep_values false: the weight has not been written yet (a model about to be loaded or
  // initialised), so its storage is swapped for an empty bf16 one without reading it; reading the
  // fresh fp32 pages made every one of them resident (the whole fp32 model, for nothing).
  void store_bf16(bool keep_values = true);
  bool bf16_stored() const { return bf16_stored_; }

  // LoRA: A [r, in] ~ kaiming_uniform(a=sqrt(5)), B [out, r] = 0, scaling alpha/r (or alpha/sqrt(r)).
  void add_lora(int64_t r, double alpha, double dropout, bool rslora, at::Generator& gen);
  bool has_lora() const { return !lora_A.is_empty(); }
  int64_t lora_rank() const { return has_lora() ? lora_A->weight.size(0) : 0; }
  void merge_lora();    // W += B A * scaling (dense base only)
  void unmerge_lora();  // W -= B A * scaling
  LoraWeight lora_A{nullptr}, lora_B{nullptr};
  double lora_scaling = 0, lora_dropout = 0;
  bool lora_enabled = true;
  bool lora_merged = false;
  // The frozen base and the adapter's B half in one node (frozen_lora_linear) where it applies;
  // false: the two nodes it replaces (CausalLM::set_fused_kernels, for tests comparing the two).
  bool fused_lora = true;

  // A second adapter on the same base, PPO's critic (train/recipe_ppo.cpp): while use_critic is
  // set it replaces the policy's adapter, so one frozen base serves two models. It starts as a
  // copy of the policy's adapter (same rank and scaling) and never has dropout.
  void add_critic_lora();
  bool has_critic() const { return !critic_A.is_empty(); }
  LoraWeight critic_A{nullptr}, critic_B{nullptr};
  bool use_critic = false;

 private:
  NF4Weight nf4_;
  bool has_nf4_ = false;
  bool bf16_stored_ = false;
};
TORCH_MODULE(Linear);

// The adapter's two halves, for the layer and for paths that form low themselves (the decoder's
// recomputing MLP): low = dropout(x) A^T [.., r], and y + scaling * low B^T. oneDNN GEMMs for fp32
// CPU tensors where it runs the fp32 products (model/cpu_gemm.h), ATen otherwise. Dropout on fp32
// CPU tensors is seeded (model/seeded_dropout.h: nothing but x kept for backward), at::dropout elsewhere.
at::Tensor lora_low(const at::Tensor& x, const at::Tensor& A, double dropout = 0.0);
at::Tensor lora_add(const at::Tensor& y, const at::Tensor& low, const at::Tensor& B, double scaling);

// x W^T (+ bias) + scaling * low B^T for a frozen dense W that frozen_linear takes (model/bf16_gemm.h)
// and an fp32 adapter half B, in one node: the adapter's product is written first and the frozen
// GEMM accumulates onto it. frozen_linear then lora_add wrote y, copied it and accumulated onto
// the copy: two passes over [tokens, out] more a layer. Falls back to that pair where the fused
// form does not apply (frozen_lora_applies).
at::Tensor frozen_lora_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& low,
                              const at::Tensor& B, double scaling);
bool frozen_lora_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& low, const at::Tensor& B);

}  // namespace hone
