// The one table of Llama-family architecture quirks, keyed by config.json "model_type".
// Everything that differs between Llama, Mistral, Qwen2, Qwen3, Gemma 1/2/3, Phi-3, SmolLM3, OLMo 2
// and Granite is a column here (or, for values a config.json sets, a field of ModelConfig).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

namespace hone {

struct ArchTraits {
  const char* model_type;        // config.json model_type
  const char* hf_class;          // architectures[0] written on save
  const char* default_act;       // hidden_act when the config does not say
  bool qkv_bias_always;          // Qwen2: q/k/v_proj carry a bias, o_proj none
  bool embed_scale_sqrt_hidden;  // Gemma: embeddings * sqrt(hidden), in the activation dtype
  float norm_weight_offset;      // Gemma: RMSNorm multiplies by (1 + w)
  bool default_tied;             // tie_word_embeddings when the config does not say
  bool honours_sliding_window;   // Mistral: attention limited to the last N keys
  const char* gguf_arch;         // general.architecture in GGUF
  const char* act_field;         // config key holding the activation ("hidden_act" or "hidden_activation")
  bool qk_norm;                  // Qwen3, Gemma 3: RMSNorm over each head of q and k (q_norm, k_norm) before RoPE
  bool sandwich_norms;           // Gemma 2/3: norms after attention and around the MLP (4 per layer), plus
                                 // query_pre_attn_scalar, soft-capping and rope_local_base_freq from the config
  bool fused_proj;               // Phi-3: qkv_proj and gate_up_proj hold q|k|v and gate|up
  int sliding_pattern;           // Gemma 2: 2, Gemma 3: 6 (every Nth layer global, the others windowed); 0: none
  bool post_norms;               // OLMo 2: no norm before attention or MLP; post_attention_layernorm and
                                 // post_feedforward_layernorm normalise each block's output before the residual add
  bool qk_norm_whole;            // OLMo 2: q_norm / k_norm over the whole projection (q_dim, kv_dim), before the heads split
  bool gguf_permute_qk;          // llama.cpp's graph rotates adjacent pairs (llama, granite, smollm3): Q/K rows interleaved
  int nope_interval;             // SmolLM3: every Nth layer has no RoPE unless no_rope_layers says which; 0: RoPE everywhere
  bool multipliers;              // Granite: embedding_multiplier, residual_multiplier, attention_multiplier, logits_scaling
};

// nullptr when model_type is not a supported architecture.
const ArchTraits* find_arch(const std::string& model_type);
std::vector<std::string> supported_model_types();

}  // namespace hone
