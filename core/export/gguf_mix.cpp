// GGUF schemes and llama.cpp's K-quant mixture rules (see gguf_mix.h). The rules are those of
// llama-quantize for dense (not mixture-of-experts) models of the architectures Hone exports.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/gguf_mix.h"

#include <cstdio>

#include "common/error.h"
#include "export/ggml_quants.h"
#include "model/arch.h"

namespace hone {

namespace {

const GgufScheme kSchemes[] = {
    {"f16", GgmlType::F16, 1, false},     {"q8_0", GgmlType::Q8_0, 7, false},  {"q6_k", GgmlType::Q6_K, 18, true},
    {"q5_k_m", GgmlType::Q5_K, 17, true}, {"q4_k_m", GgmlType::Q4_K, 15, true}, {"f32", GgmlType::F32, 0, false},
    {"bf16", GgmlType::BF16, 32, false},
};

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// llama.cpp's choice of the layers that get more bits: the first and last eighth and every third
// layer between.
bool more_bits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

}  // namespace

std::vector<std::string> gguf_scheme_names() {
  std::vector<std::string> out;
  for (const auto& s : kSchemes) out.push_back(s.name);
  return out;
}

bool gguf_scheme_from_name(const std::string& name, GgufScheme* out) {
  for (const auto& s : kSchemes)
    if (s.name == name) return *out = s, true;
  return false;
}

GgmlType gguf_tensor_type(const GgufScheme& scheme, const std::string& name, const std::vector<int64_t>& shape,
                          int n_layers, bool has_output) {
  if (shape.size() < 2) return GgmlType::F32;
  const int64_t row = shape.back();
  if (!scheme.k_mixture) {
    if (row % static_cast<int64_t>(ggml_block_elems(scheme.base))) return GgmlType::F16;
    return scheme.base;
  }
  const bool weight = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
  if (!weight || contains(name, "_norm.weight")) return GgmlType::F16;
  GgmlType t = scheme.base;
  const bool q4m = scheme.name == "q4_k_m", q5m = scheme.name == "q5_k_m";
  if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
    // The head: 6 bits, or q8_0 where its rows are not whole super-blocks.
    return row % static_cast<int64_t>(kQKK) ? GgmlType::Q8_0 : GgmlType::Q6_K;
  }
  if (contains(name, "attn_v.weight")) {
    if ((q4m || q5m) && more_bits(layer_of(name), n_layers)) t = GgmlType::Q6_K;
  } else if (contains(name, "ffn_down")) {
    if ((q4m || q5m) && more_bits(layer_of(name), n_layers)) t = GgmlType::Q6_K;
  } else if (contains(name, "attn_qkv.weight")) {
    if (q4m) t = GgmlType::Q5_K;
    else if (q5m) t = GgmlType::Q6_K;
  }
  if (row % static_cast<int64_t>(kQKK)) {  // llama.cpp's fallbacks for rows of partial super-blocks
    t = t == GgmlType::Q4_K ? GgmlType::Q5_0 : t == GgmlType::Q5_K ? GgmlType::Q5_1 : GgmlType::Q8_0;
    if (row % static_cast<int64_t>(kQK)) t = GgmlType::F16;
  }
  return t;
}

uint64_t gguf_model_bytes(const ModelConfig& c, const std::string& dtype) {
  GgufScheme scheme;
  if (!gguf_scheme_from_name(dtype.empty() ? "f16" : dtype, &scheme)) throw Error("gguf: unknown dtype \"" + dtype + "\"");
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const int64_t q = c.num_heads * D, kv = c.num_kv_heads * D;
  std::vector<std::pair<std::string, std::vector<int64_t>>> t = {{"token_embd.weight", {V, H}}, {"output_norm.weight", {H}}};
  if (!c.tie_word_embeddings) t.push_back({"output.weight", {V, H}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    if (c.arch->fused_proj) {
      t.push_back({b + "attn_qkv.weight", {q + 2 * kv, H}});
      t.push_back({b + "ffn_up.weight", {2 * I, H}});
    } else {
      t.push_back({b + "attn_q.weight", {q, H}});
      t.push_back({b + "attn_k.weight", {kv, H}});
      t.push_back({b + "attn_v.weight", {kv, H}});
      t.push_back({b + "ffn_gate.weight", {I, H}});
      t.push_back({b + "ffn_up.weight", {I, H}});
    }
    t.push_back({b + "attn_output.weight", {H, q}});
    t.push_back({b + "ffn_down.weight", {H, I}});
    for (const char* n : {"attn_norm.weight", "ffn_norm.weight"}) t.push_back({b + n, {H}});
  }
  uint64_t bytes = 0;
  for (const auto& [name, shape] : t) {
    const GgmlType ty = gguf_tensor_type(scheme, name, shape, static_cast<int>(c.num_layers), !c.tie_word_embeddings);
    const uint64_t row = static_cast<uint64_t>(shape.back());
    bytes += ggml_nbytes(ty, row, shape.size() > 1 ? static_cast<uint64_t>(shape[0]) : 1);
  }
  return bytes;  // biases, q/k norms and sandwich norms (a few KB) are left out
}

}  // namespace hone
