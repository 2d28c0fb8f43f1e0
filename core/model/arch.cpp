// Architecture quirks table (hf-compat.md §2).
#include "model/arch.h"

namespace hone {
namespace {

const ArchTraits kArchs[] = {
    // model_type  hf_class             act        qkvb   emb_s  norm+  tied   swin   gguf      act_field     qk_norm
    {"llama", "LlamaForCausalLM", "silu", false, false, 0.f, false, false, "llama", "hidden_act", false},
    {"mistral", "MistralForCausalLM", "silu", false, false, 0.f, false, true, "llama", "hidden_act", false},
    {"qwen2", "Qwen2ForCausalLM", "silu", true, false, 0.f, false, false, "qwen2", "hidden_act", false},
    {"qwen3", "Qwen3ForCausalLM", "silu", false, false, 0.f, false, false, "qwen3", "hidden_act", true},
    {"gemma", "GemmaForCausalLM", "gelu_pytorch_tanh", false, true, 1.f, true, false, "gemma", "hidden_activation", false},
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
