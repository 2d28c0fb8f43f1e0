// The Llama-family decoder (Llama, Mistral, Qwen2, Gemma) as libtorch modules whose parameter
// names are exactly the Hugging Face tensor names ("model.layers.0.self_attn.q_proj.weight").
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <vector>

#include "model/config.h"
#include "model/linear.h"

namespace hone {

// Per-layer key/value cache: k[l], v[l] are [B, n_kv, S, head_dim], views of buffers with room
// to grow, so that a decoding step writes its one position in place instead of copying the whole
// cache (at::cat per step made decoding quadratic in the length). Callers may replace k[l] / v[l]
// (eval suites select rows): the next append then moves them into a new buffer.
struct KVCache {
  std::vector<at::Tensor> k, v;
  int64_t reserve = 0;  // positions to make room for at the first append (prompt + new tokens)
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  void clear() { k.clear(); v.clear(); k_buf.clear(); v_buf.clear(); }
  // Appends [B, n_kv, T, D] keys and values for layer l; k[l] and v[l] then view all S + T.
  void append(size_t layer, const at::Tensor& k_new, const at::Tensor& v_new);

 private:
  std::vector<at::Tensor> k_buf, v_buf;  // [B, n_kv, capacity, D]
};

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps, float weight_offset);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;  // [dim]
  double eps;
  float offset;  // Gemma stores w and multiplies by (1 + w)
  bool fused = true;  // fp32 on the CPU: fused_rms_norm (model/fused_cpu.h)
};
TORCH_MODULE(RMSNorm);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& c);
  // x [B,T,H]; cos/sin [B,T,D]; mask additive [B,1,T,S]; cache slot layer l (may be null).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     KVCache* cache, size_t layer);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  Linear qkv_proj{nullptr};                  // Phi-3: q|k|v in one projection (q/k/v_proj null then)
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3, Gemma 3: over each head's [D] before RoPE (null elsewhere);
                                             // OLMo 2: over the whole projection [nh*D] / [nkv*D]
  bool qk_norm_whole = false;
  int64_t n_heads, n_kv, head_dim;
  double scale;    // of q k^T
  double softcap;  // Gemma 2: cap * tanh(scores / cap); 0: none
  bool fused = true;  // fp32 on the CPU: fused_rope (model/fused_cpu.h)
  // Without a KV cache: blocked attention (model/blocked_attention.h), which keeps no [nh, T, S]
  // probabilities for backward; false: the plain softmax(q k^T) v, kept as the reference.
  bool blocked = true;
  // Over a bf16 base (o_proj stored in bf16) on a CPU with a bf16 GEMM unit, the blocked path's
  // products run on bf16 operands with fp32 accumulation and backward keeps q, k, v in bf16 (run
  // config bf16_activations "auto"); false: fp32.
  bool bf16 = true;
};
TORCH_MODULE(Attention);

struct MLPImpl : torch::nn::Module {
  explicit MLPImpl(const ModelConfig& c);
  at::Tensor forward(const at::Tensor& x);  // down(act(gate(x)) * up(x))
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  Linear gate_up_proj{nullptr};  // Phi-3: gate|up in one projection (gate/up_proj null then)
  std::string act;
  bool fused = true;  // act(gate) * up keeping only gate and up for backward
  // Keep only gate for backward and run the up projection again there (with fused, training, a
  // separate up_proj without dropout): one [T, ffn] tensor less per layer for one more GEMM.
  bool recompute_up = false;
  // Over a bf16 base (gate and up stored in bf16), SwiGLU keeps gate and up for backward rounded
  // to bf16 (run config bf16_activations "auto"); false keeps them fp32 ("off").
  bool keep_bf16 = true;
};
TORCH_MODULE(MLP);

struct DecoderLayerImpl : torch::nn::Module {
  explicit DecoderLayerImpl(const ModelConfig& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     KVCache* cache, size_t layer);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};  // input_layernorm null: OLMo 2
  // Gemma 2/3: post_attention_layernorm normalises the attention's output, and these two wrap the MLP.
  // OLMo 2: post_attention_layernorm and post_feedforward_layernorm normalise each block's output.
  RMSNorm pre_feedforward_layernorm{nullptr}, post_feedforward_layernorm{nullptr};
  double residual_multiplier = 1.0;  // Granite: each block's output scaled before the residual add
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t vocab, int64_t dim);
  // A bf16-stored table (base_dtype "bf16") hands fp32 rows to the fp32 layers above it.
  at::Tensor forward(const at::Tensor& ids) { return bf16_stored ? at::embedding(weight, ids).to(at::kFloat) : at::embedding(weight, ids); }
  at::Tensor weight;  // [V,H]
  bool bf16_stored = false;
};
TORCH_MODULE(Embedding);

// The "model." prefix of HF names: embeddings, layers, final norm.
struct BackboneImpl : torch::nn::Module {
  explicit BackboneImpl(const ModelConfig& c);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

struct CausalLMImpl : torch::nn::Module {
  explicit CausalLMImpl(const ModelConfig& c);

  // ids [B,T] int64; attention_mask [B,S] (1 real, 0 pad; S = cache length + T) or undefined;
  // positions [B,T] or undefined (then 0.. after the cache). Returns final hidden states [B,T,H].
  at::Tensor hidden(const at::Tensor& ids, const at::Tensor& attention_mask = {}, KVCache* cache = nullptr,
                    const at::Tensor& positions = {});
  // Logits [B,T,V] in fp32.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& attention_mask = {}, KVCache* cache = nullptr,
                     const at::Tensor& positions = {});
  at::Tensor logits_from_hidden(const at::Tensor& h);
  // What the head multiplies: h, divided by Granite's logits_scaling (logits / s = (h / s) W^T), so
  // that the chunked head (train/head_logps.h) gives the same logits as logits_from_hidden.
  at::Tensor head_input(const at::Tensor& h) const { return config.logits_scaling != 1.0 ? h / config.logits_scaling : h; }
  const at::Tensor& output_weight() const;  // lm_head.weight or the tied embedding

  ModelConfig config;
  Backbone model{nullptr};
  Linear lm_head{nullptr};  // [V,H]; null when tied to the embedding
  at::Tensor inv_freq;      // [D/2] fp32, not a parameter and never saved
  at::Tensor inv_freq_local;  // Gemma 3's windowed layers (rope_local_base_freq); undefined elsewhere
  at::Tensor inv_freq_long;   // longrope: the long factors, used past original_max_position_embeddings
  // Recompute each decoder layer in backward instead of keeping its activations (training only).
  bool gradient_checkpointing = false;
  // Switches the fused fp32 CPU kernels (RMSNorm, RoPE, the loss's cross entropy, the frozen layer with its adapter's B
  // half) on or off in every layer; off runs the plain ATen ops and the separate nodes they replace (tests compare the two).
  void set_fused_kernels(bool on);
  void set_blocked_attention(bool on);  // AttentionImpl::blocked in every layer
  void set_mlp_recompute(bool on);      // MLPImpl::recompute_up in every layer (run config mlp_recompute)
  // Run config bf16_activations: over a bf16 base, MLPImpl::keep_bf16 and AttentionImpl::bf16 in
  // every layer; mlp_keep_bf16 sets the MLP's alone (tests).
  void set_bf16_activations(bool on);
  void mlp_keep_bf16(bool on);
  bool fused_kernels = true;  // read by the training loss (train/loss.h) for its cross entropy
  // Losses take token log-probs from the hidden states in chunks of positions, never holding the
  // [N, V] logits (train/head_logps.h); false: the full-logits path, kept as the reference.
  bool chunked_head = true;
  // Polled between decoder layers, in forward and (through gradient hooks) in backward; true
  // throws hone::Interrupted, so that a stop request lands within one layer of a long pass.
  std::function<bool()> interrupt;
};
TORCH_MODULE(CausalLM);

// base_dtype "bf16": every frozen dense weight of the base (the linear layers, the embedding and an
// untied head; NF4 layers stay NF4) is stored in bf16, its GEMMs accumulating in fp32, while
// activations, norms, biases and adapters stay fp32. Returns the bytes of the linear layers' base
// weights afterwards (what frozen_weight_bytes reports). Trainable weights are refused.
// keep_values false: the weights are still unwritten (before loading or init_weights); they are
// replaced by empty bf16 storage without being read.
int64_t store_base_bf16(CausalLM& m, bool keep_values = true);

// Initialises weights like transformers (normal(0, 0.02), norms at identity) from a seed.
// embed_std < 0: the embeddings use `std` as well (HF's initializer_range everywhere).
void init_weights(CausalLM& m, uint64_t seed, double std = 0.02, double embed_std = -1);

}  // namespace hone
