// ModelConfig: the fields of a Hugging Face config.json that the decoder needs, validated.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/arch.h"

namespace hone {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3 | longrope (Phi-3's "su")
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
  std::vector<double> short_factor, long_factor;  // longrope: per-frequency divisors
  double attention_factor = 1.0;                  // longrope: cos and sin are scaled by it
};

struct ModelConfig {
  std::string model_type;
  const ArchTraits* arch = nullptr;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // bias on q/k/v projections
  bool o_bias = false;    // bias on o_proj
  bool mlp_bias = false;
  std::string hidden_act = "silu";
  int64_t sliding_window = 0;  // 0 = none
  // Per layer, 1 where attention is windowed (Gemma 2/3); empty: sliding_window applies to every layer.
  std::vector<uint8_t> sliding_layers;
  double query_scale = 0;       // scores' scale; 0: 1/sqrt(head_dim) (Gemma 2/3: query_pre_attn_scalar^-0.5)
  double attn_softcap = 0;      // Gemma 2: scores = cap * tanh(scores / cap) before the mask; 0: none
  double final_softcap = 0;     // Gemma 2: the same on the logits
  double rope_local_theta = 0;  // Gemma 3: RoPE base of the windowed layers (no scaling there); 0: as global
  // SmolLM3: per layer, 1 where queries and keys are rotated (no_rope_layers); empty: every layer.
  std::vector<uint8_t> rope_layers;
  // Granite's multipliers (1 and 0 elsewhere): embeddings x embedding_multiplier, each block's
  // output x residual_multiplier before the residual add, logits / logits_scaling; the attention
  // scale is attention_multiplier (query_scale).
  double embedding_multiplier = 1.0, residual_multiplier = 1.0, logits_scaling = 1.0;
  // Read from a multimodal checkpoint (Gemma 3 4B and up: Gemma3ForConditionalGeneration): the text
  // model's config came from its text_config, and its tensors carry a prefix ("language_model.model."
  // or "model.language_model."); the vision tower's are never read.
  bool multimodal_text = false;
  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;
  int64_t pad_token_id = -1;
  std::string torch_dtype = "float32";
  nlohmann::json raw;  // the whole file (a multimodal one's text model, as Gemma3ForCausalLM), written back on save

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // Parameters of the full model (embedding counted once when tied).
  int64_t parameter_count() const;
};

// Parses and validates; `path` is used in error messages.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& path);
// The Hugging Face name inside the text model for a checkpoint tensor name: unchanged for text
// models; for a multimodal one the language model's prefix becomes "model." and "" is returned for
// the vision tower's and the projector's tensors (skipped, never read).
std::string text_model_tensor_name(const ModelConfig& c, const std::string& name);
ModelConfig load_model_config(const std::string& model_dir);

}  // namespace hone
