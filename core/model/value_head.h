// PPO's value head, as TRL's AutoModelForCausalLMWithValueHead has it: a linear map of the
// policy's final hidden states to one number per position, `v_head.summary` (weight [1, H], bias
// [1]), on the same (adapter-carrying) backbone as the policy. It is registered on the CausalLM as
// module "v_head" so it trains and checkpoints with the adapters; a saved adapter keeps it apart,
// in value_head.safetensors, so that PEFT and the exports load the policy adapter unchanged.
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

// The file, in an adapter folder, that holds the head ("v_head.summary.weight", ".bias").
inline constexpr const char* kValueHeadFile = "value_head.safetensors";
void save_value_head(CausalLM& m, const std::string& adapter_dir);
// Copies the head's tensors from an adapter folder's value_head.safetensors; throws naming the
// file and tensor when a tensor is missing or has the wrong shape.
void load_value_head(CausalLM& m, const std::string& adapter_dir);

}  // namespace hone
