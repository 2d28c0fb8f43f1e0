// PPO's value model. Its head is TRL's AutoModelForCausalLMWithValueHead one: a linear map of final
// hidden states to one number per position, `v_head.summary` (weight [1, H], bias [1]), registered
// on the CausalLM as module "v_head" so it trains and checkpoints with the adapters. It reads
// either the policy's own hidden states ("value_model": "head") or those of a critic adapter on the
// same frozen base ("adapter", model/linear.h), a separate value model as in TRL's PPOv2. A saved
// adapter keeps the head and the critic apart, in value_head.safetensors, so that PEFT and the
// exports load the policy adapter unchanged.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "model/decoder.h"

namespace hone {

// Adds a trainable value head, zero-initialised (values start at 0), unless present.
void attach_value_head(CausalLM& m);
bool has_value_head(CausalLM& m);

// Values [...] in fp32 of hidden states h [..., H].
at::Tensor value_of_hidden(CausalLM& m, const at::Tensor& h);

// The file, in an adapter folder, that holds the value model: the head ("v_head.summary.weight",
// ".bias") and, with a critic adapter, its matrices under their parameter names
// ("model.layers.0.self_attn.q_proj.critic_A.weight", ...).
inline constexpr const char* kValueHeadFile = "value_head.safetensors";
// Whether a parameter name belongs to the value model (and so to that file).
bool is_value_model_tensor(const std::string& name);
void save_value_head(CausalLM& m, const std::string& adapter_dir);
// Copies the value model's tensors from an adapter folder's value_head.safetensors; throws naming
// the file and tensor when a tensor is missing or has the wrong shape.
void load_value_head(CausalLM& m, const std::string& adapter_dir);

}  // namespace hone
