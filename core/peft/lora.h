// LoRA over a CausalLM as PEFT does it: which projections get adapters, freezing the base,
// switching adapters off (DPO reference), merging, QLoRA's NF4 base, and PEFT adapter files
// (adapter_config.json + adapter_model.safetensors with PEFT's key names and shapes).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

#include "model/decoder.h"
#include "peft/lora_config.h"

namespace hone {

// Adds adapters to every matching projection and freezes all other parameters. Returns the count.
int attach_lora(CausalLM& m, const LoraConfig& c, uint64_t seed);
void set_lora_enabled(CausalLM& m, bool enabled);
// Dropout on every adapter input (PPO turns it off so that sampling and updating agree).
void set_lora_dropout(CausalLM& m, double p);
// PPO's critic (model/linear.h): a copy of every layer's adapter, trainable, used in place of the
// policy's while set_critic_active is on. Returns the count.
int attach_critic_lora(CausalLM& m);
void set_critic_active(CausalLM& m, bool on);
void merge_lora(CausalLM& m);
void unmerge_lora(CausalLM& m);
// Stores every decoder projection (not embeddings, norms or lm_head) as NF4. Returns bytes held.
int64_t quantize_base_nf4(CausalLM& m);
int64_t count_parameters(CausalLM& m, bool trainable_only);

void save_peft_adapter(CausalLM& m, const LoraConfig& c, const std::string& base_model, const std::string& dir);
// Reads an adapter folder written by PEFT or by Hone, attaches it and loads its weights.
LoraConfig load_peft_adapter(CausalLM& m, const std::string& dir);

}  // namespace hone
