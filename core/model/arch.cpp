// Architecture quirks table (hf-compat.md §2).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/arch.h"

namespace hone {
namespace {

const ArchTraits kArchs[] = {
    // model_type  hf_class  act  qkvb  emb_s  norm+  tied  swin  gguf  act_field  qk_norm  sandwich  fused  pattern
    //   post_norms  qk_whole  permute  nope  mult
    {"llama", "LlamaForCausalLM", "silu", false, false, 0.f, false, false, "llama", "hidden_act", false, false, false, 0,
     false, false, true, 0, false},
    {"mistral", "MistralForCausalLM", "silu", false, false, 0.f, false, true, "llama", "hidden_act", false, false, false, 0,
     false, false, true, 0, false},
    {"qwen2", "Qwen2ForCausalLM", "silu", true, false, 0.f, false, false, "qwen2", "hidden_act", false, false, false, 0,
     false, false, false, 0, false},
    {"qwen3", "Qwen3ForCausalLM", "silu", false, false, 0.f, false, false, "qwen3", "hidden_act", true, false, false, 0,
     false, false, false, 0, false},
    {"gemma", "GemmaForCausalLM", "gelu_pytorch_tanh", false, true, 1.f, true, false, "gemma", "hidden_activation", false, false, false, 0,
     false, false, false, 0, false},
    {"gemma2", "Gemma2ForCausalLM", "gelu_pytorch_tanh", false, true, 1.f, true, true, "gemma2", "hidden_activation", false, true, false, 2,
     false, false, false, 0, false},
    {"gemma3_text", "Gemma3ForCausalLM", "gelu_pytorch_tanh", false, true, 1.f, true, true, "gemma3", "hidden_activation", true, true, false, 6,
     false, false, false, 0, false},
    {"phi3", "Phi3ForCausalLM", "silu", false, false, 0.f, false, true, "phi3", "hidden_act", false, false, true, 0,
     false, false, false, 0, false},
    {"smollm3", "SmolLM3ForCausalLM", "silu", false, false, 0.f, true, false, "smollm3", "hidden_act", false, false, false, 0,
     false, false, true, 4, false},
    {"olmo2", "Olmo2ForCausalLM", "silu", false, false, 0.f, false, false, "olmo2", "hidden_act", true, false, false, 0,
     true, true, false, 0, false},
    {"granite", "GraniteForCausalLM", "silu", false, false, 0.f, true, false, "granite", "hidden_act", false, false, false, 0,
     false, false, true, 0, true},
};

}  // namespace

const ArchTraits* find_arch(const std::string& model_type) {
  for (const auto& a : kArchs)
    if (model_type == a.model_type) return &a;
  return nullptr;
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> v;
  for (const auto& a : kArchs) v.push_back(a.model_type);
  return v;
}

}  // namespace hone
